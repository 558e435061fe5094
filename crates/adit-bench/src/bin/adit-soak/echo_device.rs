//! A device running the device SDK that accepts every stream and echoes its bytes back,
//! half-closing when the service side does.

use std::time::Duration;

use adit_device::{DeviceClient, DeviceStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Serves `client`'s stream requests until it is shut down, each on its own task.
pub async fn serve(client: &mut DeviceClient) {
    while let Some(request) = client.next_request().await {
        tokio::spawn(async move {
            match request.accept().await {
                Ok(stream) => echo(stream).await,
                Err(e) => eprintln!("soak: device failed to accept a stream: {e}"),
            }
        });
    }
}

async fn echo(mut stream: DeviceStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = stream.shutdown().await;
    // The service side closes once it has read our EOF; answer its Close.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.close()).await;
}
