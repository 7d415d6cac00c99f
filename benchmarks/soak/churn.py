#!/usr/bin/env python3
"""Lease churn for the soak: N peer leases changing at a fixed rate through etcd's JSON gateway (one process,
keep-alive HTTP, so the driver itself costs next to nothing).

    churn.py ENDPOINT PREFIX --peers 200 --rate 20 --seconds 600 [--populate-only]

Peers are 10.244.20.0/24 .. (20 + peers - 1), at most 200; each change picks one at random and, if it exists, deletes it or
gives it a new VtepMAC (half and half), or else creates it. --populate-only creates every peer once and exits.
"""
import argparse, base64, http.client, json, random, sys, time, urllib.parse


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Etcd:
    def __init__(self, endpoint):
        url = urllib.parse.urlparse(endpoint)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    def call(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")

    def put(self, key, value):
        self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def delete(self, key):
        self.call("/v3/kv/deleterange", {"key": b64(key)})


def lease(i, mac_seed):
    mac = "0e:2a:%02x:%02x:%02x:%02x" % (i & 0xff, (mac_seed >> 16) & 0xff, (mac_seed >> 8) & 0xff, mac_seed & 0xff)
    return json.dumps({"PublicIP": "198.18.1.%d" % (i % 250 + 1), "PublicIPv6": None, "BackendType": "vxlan",
                       "BackendData": {"VNI": 1, "VtepMAC": mac}}, separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("prefix")
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--populate-only", action="store_true")
    args = parser.parse_args()
    etcd = Etcd(args.endpoint)
    if args.peers > 200:
        parser.error("at most 200 peers (10.244.20.0/24 .. 10.244.219.0/24 inside the /16)")
    key = lambda i: "%s/subnets/10.244.%d.0-24" % (args.prefix, 20 + i)
    present = set()
    if args.populate_only:
        for i in range(args.peers):
            etcd.put(key(i), lease(i, random.getrandbits(24)))
        return
    for i in range(args.peers):
        present.add(i)  # populated before
    rng = random.Random(11)
    changes = 0
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        i = rng.randrange(args.peers)
        if i in present and rng.random() < 0.5:
            etcd.delete(key(i))
            present.discard(i)
        else:
            etcd.put(key(i), lease(i, rng.getrandbits(24)))
            present.add(i)
        changes += 1
        due = start + changes / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    # Leave the cluster as churn left it; report what etcd should hold.
    print("churn: %d changes in %.0f s; %d peers present" % (changes, time.monotonic() - start, len(present)), flush=True)
    print("present: " + " ".join(str(20 + i) for i in sorted(present)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
