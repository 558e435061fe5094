"""Drives Adit's registry with Azure's own service SDK, azure-iot-hub 2.7.0.

Env: IOTHUB_CONNECTION_STRING (owner), REQUESTS_CA_BUNDLE (the hub's dev CA).
Exits non-zero with a message on the first mismatch; prints one line per step.
"""

import base64
import os
import sys
import uuid

from azure.iot.hub import IoTHubRegistryManager
from msrest.exceptions import HttpOperationError


def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)
    print("ok: " + what)


def status_of(err):
    return err.response.status_code if err.response is not None else None


def expect_http_error(fn, status, what):
    try:
        fn()
    except HttpOperationError as e:
        check(status_of(e) == status, "%s -> HTTP %s (got %s)" % (what, status, status_of(e)))
        check(e.response.headers.get("iothub-errorcode"), what + " carries iothub-errorcode")
        return
    check(False, what + " should have failed with HTTP %d" % status)


rm = IoTHubRegistryManager.from_connection_string(os.environ["IOTHUB_CONNECTION_STRING"])
device_id = "py-" + uuid.uuid4().hex[:8]

# Create with keys left to the hub.
created = rm.create_device_with_sas(device_id, None, None, "enabled")
check(created.device_id == device_id, "create returns the device")
pk = created.authentication.symmetric_key.primary_key
sk = created.authentication.symmetric_key.secondary_key
check(pk and sk and pk != sk, "hub generated two distinct keys")
check(len(base64.b64decode(pk)) == 32, "generated key is 32 bytes")
check(created.status == "enabled", "status enabled")
check(created.connection_state == "Disconnected", "connection state Disconnected")

expect_http_error(lambda: rm.create_device_with_sas(device_id, None, None, "enabled"), 409, "duplicate create")

got = rm.get_device(device_id)
check(got.authentication.symmetric_key.primary_key == pk, "get returns the same keys")
check(got.etag == created.etag, "get returns the same etag")

updated = rm.update_device_with_sas(device_id, got.etag, pk, sk, "disabled")
check(updated.status == "disabled", "update with etag disables the device")
check(updated.etag != got.etag, "update changes the etag")
expect_http_error(lambda: rm.update_device_with_sas(device_id, got.etag, pk, sk, "enabled"), 412, "update with stale etag")
again = rm.update_device_with_sas(device_id, "*", pk, sk, "enabled")
check(again.status == "enabled", "update with * re-enables the device")

# Create with keys chosen by the client.
own_id = device_id + "-own"
own_pk = base64.b64encode(os.urandom(32)).decode()
own_sk = base64.b64encode(os.urandom(32)).decode()
own = rm.create_device_with_sas(own_id, own_pk, own_sk, "disabled")
check(own.authentication.symmetric_key.primary_key == own_pk, "client-chosen key kept")
check(own.status == "disabled", "created disabled")

listed = [d.device_id for d in rm.get_devices(100)]
check(device_id in listed and own_id in listed, "list includes both devices")
check(len(rm.get_devices(1)) == 1, "list honours max_number_of_devices")

rm.delete_device(device_id)
rm.delete_device(own_id, etag=own.etag)
expect_http_error(lambda: rm.get_device(device_id), 404, "get after delete")
expect_http_error(lambda: rm.delete_device(device_id), 404, "delete after delete")
check(device_id not in [d.device_id for d in rm.get_devices(100)], "list no longer includes the device")
print("PASS")
