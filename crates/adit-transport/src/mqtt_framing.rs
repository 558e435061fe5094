//! MQTT 3.1.1 packets over a byte stream (TLS, or a WebSocket through [`crate::WsIo`]): a
//! bounded read buffer, a reusable write buffer, rumqttc's v4 codec. The hub and the device
//! SDK both frame with this.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Why a connection can no longer be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The bytes are not valid MQTT 3.1.1 (or exceed the packet size limit).
    #[error("malformed MQTT: {0}")]
    Protocol(rumqttc::mqttbytes::Error),
    /// The first packet is not a CONNECT (known from its first byte).
    #[error("first packet is not CONNECT")]
    NotConnect,
    /// The peer closed in the middle of a packet.
    #[error("connection closed mid-packet")]
    Truncated,
    /// The socket failed.
    #[error("I/O error")]
    Io(#[from] std::io::Error),
}

/// Framed MQTT over `T`.
#[derive(Debug)]
pub struct MqttConnection<T> {
    io: T,
    read: BytesMut,
    write: BytesMut,
    max_packet: usize,
}

/// Decodes one packet from the front of `buf`: `Ok(None)` means more bytes are needed.
/// Bounded: a header announcing more than `max_packet` bytes is an error before the body
/// arrives, so the buffer never grows past one packet.
pub fn decode(buf: &mut BytesMut, max_packet: usize) -> Result<Option<Packet>, ConnectionError> {
    // Types 0 and 15 are reserved: refuse at the first byte instead of after the body.
    if buf.first().is_some_and(|b| b >> 4 == 0 || b >> 4 == 15) {
        return Err(ConnectionError::Protocol(
            rumqttc::mqttbytes::Error::InvalidPacketType(buf[0] >> 4),
        ));
    }
    match Packet::read(buf, max_packet) {
        Ok(p) => Ok(Some(p)),
        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(ConnectionError::Protocol(e)),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> MqttConnection<T> {
    /// Wraps a byte stream.
    pub fn new(io: T, max_packet: usize) -> Self {
        Self {
            io,
            read: BytesMut::with_capacity(512),
            // Grown on first use: an idle device is sent only a CONNACK and a SUBACK.
            write: BytesMut::new(),
            max_packet,
        }
    }

    /// The next packet; `None` on a clean end of stream.
    ///
    /// Cancel-safe: bytes read before a cancellation stay in the buffer for the next call.
    pub async fn read_packet(&mut self) -> Result<Option<Packet>, ConnectionError> {
        loop {
            if let Some(packet) = decode(&mut self.read, self.max_packet)? {
                return Ok(Some(packet));
            }
            if self.io.read_buf(&mut self.read).await? == 0 {
                return if self.read.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnectionError::Truncated)
                };
            }
        }
    }

    /// The first packet, which must be CONNECT. Fails as soon as the first byte shows another
    /// packet type, rather than waiting for a body that may never come.
    pub async fn read_connect(&mut self) -> Result<Option<Packet>, ConnectionError> {
        while self.read.is_empty() {
            if self.io.read_buf(&mut self.read).await? == 0 {
                return Ok(None);
            }
        }
        // CONNECT is packet type 1 with all flag bits zero (MQTT 3.1.1, 3.1.1).
        if self.read[0] != 0x10 {
            return Err(ConnectionError::NotConnect);
        }
        self.read_packet().await
    }

    /// Encodes and sends one packet.
    pub async fn write_packet(&mut self, packet: &Packet) -> Result<(), ConnectionError> {
        self.write.clear();
        packet
            .write(&mut self.write, self.max_packet)
            .map_err(ConnectionError::Protocol)?;
        self.io.write_all(&self.write).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Closes the write side (TLS close_notify, WebSocket Close).
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::{Connect, Login, Publish, Subscribe};

    use super::*;

    fn encode(p: &Packet) -> BytesMut {
        let mut b = BytesMut::new();
        p.write(&mut b, 1 << 20).expect("encodes");
        b
    }

    #[test]
    fn partial_packets_wait_for_more_bytes() {
        let mut connect = Connect::new("dev");
        connect.login = Some(Login::new(
            "h/dev/?api-version=1",
            "SharedAccessSignature sr=x",
        ));
        let full = encode(&Packet::Connect(connect.clone()));
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(matches!(decode(&mut part, 1024), Ok(None)), "cut at {cut}");
        }
        let mut whole = full.clone();
        assert!(
            matches!(decode(&mut whole, 1024), Ok(Some(Packet::Connect(c))) if c.client_id == "dev")
        );
        assert!(whole.is_empty());
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        let publish = Publish::new("t", QoS::AtMostOnce, vec![0u8; 5000]);
        let full = encode(&Packet::Publish(publish));
        let mut header_only = BytesMut::from(&full[..5]);
        assert!(matches!(
            decode(&mut header_only, 1024),
            Err(ConnectionError::Protocol(_))
        ));
    }

    #[test]
    fn garbage_is_refused() {
        for bytes in [
            &[0x00, 0x00][..],                     // packet type 0 is reserved
            &[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f], // remaining length longer than 4 bytes
            &[0x82, 0x02, 0x00, 0x01],             // SUBSCRIBE with no filters
            &[0x36, 0x03, 0x00, 0x01, b'a'],       // PUBLISH with QoS 3
        ] {
            let mut b = BytesMut::from(bytes);
            assert!(decode(&mut b, 1024).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn back_to_back_packets_split_cleanly() {
        let mut b = encode(&Packet::PingReq);
        b.extend_from_slice(&encode(&Packet::Subscribe(Subscribe::new(
            "$iothub/streams/POST/#",
            QoS::AtMostOnce,
        ))));
        assert!(matches!(decode(&mut b, 1024), Ok(Some(Packet::PingReq))));
        assert!(matches!(
            decode(&mut b, 1024),
            Ok(Some(Packet::Subscribe(_)))
        ));
        assert!(matches!(decode(&mut b, 1024), Ok(None)));
    }

    proptest! {
        #[test]
        fn decoder_never_panics_and_stays_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut b = BytesMut::from(&bytes[..]);
            // Drain as many packets as decode; any outcome but a panic is fine.
            for _ in 0..64 {
                match decode(&mut b, 512) {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }

        #[test]
        fn valid_fixed_header_with_random_body_never_panics(kind in 1u8..15, flags in 0u8..16, body in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut b = BytesMut::new();
            b.extend_from_slice(&[(kind << 4) | flags, body.len() as u8]);
            b.extend_from_slice(&body);
            let _ = decode(&mut b, 1024);
        }
    }
}
