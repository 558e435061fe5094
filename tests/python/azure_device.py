"""Azure's own device SDK (azure-iot-device 2.14.0) against Adit's device endpoint.

The SDK's ports are fixed: MQTT over TLS on 8883, MQTT over WebSocket on 443.
Env: DEVICE_CONNECTION_STRING, WRONG_CONNECTION_STRING, CA_FILE. Prints PASS on success.
"""

import os
import sys
import time

from azure.iot.device import IoTHubDeviceClient
from azure.iot.device import exceptions


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


ca = open(os.environ["CA_FILE"]).read()
KEEP_ALIVE = 2

for websockets in (False, True):
    label = "websockets" if websockets else "mqtt"
    client = IoTHubDeviceClient.create_from_connection_string(
        os.environ["DEVICE_CONNECTION_STRING"],
        server_verification_cert=ca,
        websockets=websockets,
        keep_alive=KEEP_ALIVE,
        connection_retry=False,
    )
    client.connect()
    if not client.connected:
        fail(label + ": not connected after connect()")
    time.sleep(KEEP_ALIVE * 2 + 1)
    if not client.connected:
        fail(label + ": dropped within two keep-alive periods")
    client.disconnect()
    if client.connected:
        fail(label + ": still connected after disconnect()")
    client.shutdown()
    print("ok: " + label)

    wrong = IoTHubDeviceClient.create_from_connection_string(
        os.environ["WRONG_CONNECTION_STRING"],
        server_verification_cert=ca,
        websockets=websockets,
        connection_retry=False,
    )
    try:
        wrong.connect()
    except (exceptions.CredentialError, exceptions.ConnectionFailedError, exceptions.ClientError) as e:
        print("ok: {} wrong key refused ({})".format(label, type(e).__name__))
    else:
        fail(label + ": wrong key was accepted")
    finally:
        wrong.shutdown()

print("PASS")
