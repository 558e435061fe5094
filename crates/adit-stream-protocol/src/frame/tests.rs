//! Frame codec tests: round trips under any cut, the header check against decode, limits
//! and the byte shapes of each frame type.
use super::*;
use proptest::prelude::*;

fn frames() -> impl Strategy<Value = Frame> {
    let conn = 1u32..;
    prop_oneof![
        (any::<u16>(), 1u32..=MAX_DATA as u32, 1u32..).prop_map(|(v, m, w)| Frame::Hello {
            version: v,
            max_data: m,
            initial_window: w
        }),
        (
            conn.clone(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_TARGET)
        )
            .prop_map(|(conn, t)| Frame::Open {
                conn,
                target: Bytes::from(t)
            }),
        conn.clone().prop_map(|conn| Frame::Opened { conn }),
        (
            conn.clone(),
            proptest::collection::vec(any::<u8>(), 1..=MAX_DATA)
        )
            .prop_map(|(conn, p)| Frame::Data {
                conn,
                payload: Bytes::from(p)
            }),
        (conn.clone(), 1u32..).prop_map(|(conn, increment)| Frame::Window { conn, increment }),
        conn.clone().prop_map(|conn| Frame::Fin { conn }),
        (conn, any::<u16>(), "\\PC{0,64}").prop_map(|(conn, c, reason)| Frame::Reset {
            conn,
            code: ResetCode::from_u16(c),
            reason
        }),
        any::<u64>().prop_map(|position| Frame::Ack { position }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(attach, position)| Frame::Resume { attach, position }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(attach, position)| Frame::Resumed { attach, position }),
        any::<u64>().prop_map(|opaque| Frame::Ping { opaque }),
        any::<u64>().prop_map(|opaque| Frame::Pong { opaque }),
    ]
}

proptest! {
    /// Any sequence of frames, cut anywhere, decodes back to itself.
    #[test]
    fn frames_round_trip_whatever_the_cuts(
        frames in proptest::collection::vec(frames(), 0..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = BytesMut::new();
        for f in &frames {
            f.encode(&mut bytes);
        }
        let total: usize = frames.iter().map(Frame::encoded_len).sum();
        prop_assert_eq!(bytes.len(), total);
        let split = cut.index(bytes.len() + 1);
        let mut buf = BytesMut::from(&bytes[..split]);
        let mut got = Vec::new();
        while let Some(f) = decode(&mut buf, MAX_DATA).expect("valid") {
            got.push(f);
        }
        buf.extend_from_slice(&bytes[split..]);
        while let Some(f) = decode(&mut buf, MAX_DATA).expect("valid") {
            got.push(f);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, frames);
    }

    /// Arbitrary bytes never panic the decoder, and a frame it accepts re-encodes to the
    /// bytes it came from.
    #[test]
    fn arbitrary_bytes_are_refused_or_exact(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&raw[..]);
        if let Ok(Some(f)) = decode(&mut buf, MAX_DATA) {
            let mut again = BytesMut::new();
            f.encode(&mut again);
            prop_assert_eq!(&again[..], &raw[..f.encoded_len()]);
        }
    }
}

proptest! {
    /// The header alone says how long every valid frame is and which side of the
    /// multiplexer it belongs to.
    #[test]
    fn the_header_gives_each_frames_length_and_layer(f in frames()) {
        let mut bytes = BytesMut::new();
        f.encode(&mut bytes);
        let h = peek_header(&bytes[..HEADER_LEN], MAX_DATA).expect("valid").expect("whole");
        prop_assert_eq!(h.frame_len(), f.encoded_len());
        prop_assert_eq!(
            h.kind.is_link(),
            matches!(
                f,
                Frame::Ack { .. }
                    | Frame::Resume { .. }
                    | Frame::Resumed { .. }
                    | Frame::Ping { .. }
                    | Frame::Pong { .. }
            )
        );
    }

    /// Whatever the header refuses, decode refuses the same way; whatever decode takes,
    /// the header measured.
    #[test]
    fn the_header_check_agrees_with_decode(
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        max_data in 1usize..=MAX_DATA,
    ) {
        let peeked = peek_header(&raw, max_data);
        let mut buf = BytesMut::from(&raw[..]);
        let decoded = decode(&mut buf, max_data);
        match (peeked, decoded) {
            (Err(e), d) => prop_assert_eq!(d, Err(e)),
            (Ok(None), d) => prop_assert_eq!(d, Ok(None)),
            (Ok(Some(h)), Ok(Some(f))) => prop_assert_eq!(h.frame_len(), f.encoded_len()),
            (Ok(Some(h)), Ok(None)) => prop_assert!(raw.len() < h.frame_len()),
            (Ok(Some(_)), Err(e)) => {
                prop_assert!(matches!(e, FrameError::Malformed { .. }), "{:?}", e);
            }
        }
    }
}

#[test]
fn limits_are_checked_from_the_header_alone() {
    let header = |t: u8, conn: u32, len: u32| {
        let mut b = BytesMut::new();
        b.put_u8(t);
        b.put_u8(0);
        b.put_u32(conn);
        b.put_u32(len);
        b
    };
    // A DATA frame one byte over the negotiated limit is refused before its payload.
    let mut b = header(DATA, 1, 1025);
    assert_eq!(
        decode(&mut b, 1024),
        Err(FrameError::Oversized {
            kind: "DATA",
            len: 1025,
            max: 1024
        })
    );
    let mut b = header(DATA, 1, 1024);
    assert_eq!(
        decode(&mut b, 1024),
        Ok(None),
        "at the limit: waits for the payload"
    );
    let mut b = header(OPEN, 1, (MAX_TARGET + 1) as u32);
    assert!(matches!(
        decode(&mut b, MAX_DATA),
        Err(FrameError::Oversized { .. })
    ));
    let mut b = header(0x0C, 1, 0);
    assert_eq!(decode(&mut b, MAX_DATA), Err(FrameError::UnknownType(0x0C)));
    let mut b = header(FIN, 0, 0);
    assert!(matches!(
        decode(&mut b, MAX_DATA),
        Err(FrameError::Malformed { .. })
    ));
    // A stream-level frame naming a connection is refused before its payload.
    let b = header(RESUME, 5, RESUME_LEN as u32);
    assert!(matches!(
        peek_header(&b, MAX_DATA),
        Err(FrameError::Malformed { .. })
    ));
    assert_eq!(peek_header(&b[..HEADER_LEN - 1], MAX_DATA), Ok(None));
    let mut b = header(WINDOW, 3, 4);
    b.put_u32(0);
    assert!(matches!(
        decode(&mut b, MAX_DATA),
        Err(FrameError::Malformed { .. })
    ));
}

#[test]
fn ping_and_pong_are_link_frames_of_eight_bytes() {
    for (f, t) in [
        (Frame::Ping { opaque: 7 }, PING),
        (
            Frame::Pong {
                opaque: u64::MAX - 1,
            },
            PONG,
        ),
    ] {
        let mut b = BytesMut::new();
        f.encode(&mut b);
        assert_eq!(b.len(), HEADER_LEN + 8, "as long as ACK");
        assert_eq!(b[0], t);
        assert_eq!(&b[2..6], &[0, 0, 0, 0], "connection 0");
        let h = peek_header(&b, MAX_DATA).expect("valid").expect("whole");
        assert!(h.kind.is_link(), "travels alone, never counted");
        assert_eq!(decode(&mut b, MAX_DATA), Ok(Some(f)));
        assert!(b.is_empty());
    }
}

#[test]
fn ping_and_pong_of_the_wrong_shape_are_refused() {
    let frame = |t: u8, conn: u32, payload: &[u8]| {
        let mut b = BytesMut::new();
        b.put_u8(t);
        b.put_u8(0);
        b.put_u32(conn);
        b.put_u32(payload.len() as u32);
        b.put_slice(payload);
        b
    };
    for t in [PING, PONG] {
        // A connection id on a link frame is refused from the header alone.
        let b = frame(t, 1, &[0; 8]);
        assert!(matches!(
            peek_header(&b, MAX_DATA),
            Err(FrameError::Malformed { .. })
        ));
        // Seven or nine bytes are not a u64.
        for len in [7, 9] {
            let mut b = frame(t, 0, &vec![0; len]);
            assert_eq!(
                decode(&mut b, MAX_DATA),
                Err(FrameError::Malformed {
                    kind: kind_name(t),
                    why: "wrong payload length"
                })
            );
        }
        // Over the control limit: refused before the payload arrives.
        let mut b = frame(t, 0, &[]);
        b[6..10].copy_from_slice(&((MAX_CONTROL + 1) as u32).to_be_bytes());
        assert!(matches!(
            decode(&mut b, MAX_DATA),
            Err(FrameError::Oversized { .. })
        ));
    }
}

#[test]
fn resume_and_resumed_carry_the_attach_number_then_the_position() {
    for (f, t) in [
        (
            Frame::Resume {
                attach: 3,
                position: 0x0102_0304_0506_0708,
            },
            RESUME,
        ),
        (
            Frame::Resumed {
                attach: 3,
                position: 0x0102_0304_0506_0708,
            },
            RESUMED,
        ),
    ] {
        let mut b = BytesMut::new();
        f.encode(&mut b);
        assert_eq!(
            &b[..],
            &[
                t, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8
            ][..]
        );
        let h = peek_header(&b, MAX_DATA).expect("valid").expect("whole");
        assert!(h.kind.is_link(), "travels alone, never counted");
        assert_eq!(decode(&mut b, MAX_DATA), Ok(Some(f)));
        // The old 8-byte shape (position only) is refused, not misread.
        let mut short = BytesMut::from(&[t, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9][..]);
        assert_eq!(
            decode(&mut short, MAX_DATA),
            Err(FrameError::Malformed {
                kind: kind_name(t),
                why: "wrong payload length"
            })
        );
    }
}

#[test]
fn a_long_reason_is_cut_at_a_character_boundary() {
    let f = Frame::Reset {
        conn: 1,
        code: ResetCode::Failed,
        reason: "é".repeat(200),
    };
    let mut b = BytesMut::new();
    f.encode(&mut b);
    match decode(&mut b, MAX_DATA) {
        Ok(Some(Frame::Reset { reason, .. })) => {
            assert!(reason.len() <= MAX_REASON);
            assert!(reason.chars().all(|c| c == 'é'));
        }
        other => panic!("{other:?}"),
    }
}
