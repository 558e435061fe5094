"""A raw MQTT device built on paho-mqtt, against Adit's device endpoint.

Env: DEVICE_CONNECTION_STRING, CA_FILE, MQTT_PORT, HTTPS_PORT, TRANSPORT (tcp|websockets), RID.
Signs its own SAS token (as Azure's Python device SDK does: quote(uri, safe="")), subscribes
to both stream topics plus one it may not have, publishes a stream response, and checks
every answer. Prints PASS on success.
"""

import base64
import hashlib
import hmac
import os
import ssl
import sys
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


cs = dict(part.split("=", 1) for part in os.environ["DEVICE_CONNECTION_STRING"].split(";"))
host_name = cs["HostName"]
host = host_name.split(":")[0]
device = cs["DeviceId"]
transport = os.environ["TRANSPORT"]
port = int(os.environ["MQTT_PORT"] if transport == "tcp" else os.environ["HTTPS_PORT"])
rid = os.environ["RID"]

expiry = str(int(time.time()) + 3600)
sr = urllib.parse.quote("{}/devices/{}".format(host_name, device), safe="")
digest = hmac.new(base64.b64decode(cs["SharedAccessKey"]), (sr + "\n" + expiry).encode(), hashlib.sha256).digest()
sig = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
token = "SharedAccessSignature sr={}&sig={}&se={}".format(sr, sig, expiry)

client = mqtt.Client(client_id=device, protocol=mqtt.MQTTv311, transport=transport, clean_session=False)
client.username_pw_set("{}/{}/?api-version=2021-04-12&DeviceClientType=paho".format(host_name, device), token)
client.tls_set(ca_certs=os.environ["CA_FILE"], tls_version=ssl.PROTOCOL_TLS_CLIENT)
if transport == "websockets":
    client.ws_set_options(path="/$iothub/websocket")

events = {}
done = threading.Event()


def on_connect(c, userdata, flags, rc):
    events["connack"] = rc
    c.subscribe([("$iothub/streams/POST/#", 1), ("$iothub/streams/res/#", 0), ("devices/{}/messages/devicebound/#".format(device), 1)])


def on_subscribe(c, userdata, mid, granted):
    events["granted"] = tuple(granted)
    info = c.publish("$iothub/streams/res/200/?$rid={}".format(rid), b"", qos=1)
    events["publish_mid"] = info.mid


def on_publish(c, userdata, mid):
    if mid == events.get("publish_mid"):
        events["puback"] = True
        done.set()


def on_disconnect(c, userdata, rc):
    events["disconnect_rc"] = rc
    done.set()


client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_publish = on_publish
client.on_disconnect = on_disconnect
client.connect(host, port, keepalive=2)
client.loop_start()
if not done.wait(20):
    fail("no answer within 20 s: {}".format(events))
if events.get("connack") != 0:
    fail("CONNACK {}".format(events.get("connack")))
if events.get("granted") != (0, 0, 128):
    fail("SUBACK {} (want QoS 0, QoS 0, refused)".format(events.get("granted")))
if not events.get("puback"):
    fail("no PUBACK: {}".format(events))
# Stay connected past two keep-alive periods: paho pings, the hub answers.
time.sleep(5)
if "disconnect_rc" in events:
    fail("dropped while idle: {}".format(events))
client.disconnect()
client.loop_stop()
print("PASS")
