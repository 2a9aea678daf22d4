#!/usr/bin/env python3
"""An aiortc peer speaking remotemedia-webrtc's signaling dialect (JSON-RPC 2.0 over
WebSocket, see SIGNALING-PROTOCOL), for the interop tests in tests/aiortc.rs.

    peer.py --signal ws://127.0.0.1:PORT --id ID [--call PEER] [--echo] [--timeout S]

It announces ID. With --call it waits until PEER is on the server (announce's other_peers or
a peer_joined notification), creates a data channel "data" and sends an offer; otherwise it
answers the offers it gets. aiortc does not trickle: its descriptions carry all its
candidates. It does accept trickled `ice_candidate` notifications, held until the remote
description is set. When a channel opens it sends "hello from aiortc"; with --echo it sends
"echo:" + message back for every message. Loopback only: host candidates are 127.0.0.1 and
there is no STUN server.

Exits 0 when the connection closes (or the remote leaves) after having been connected, 2 on
timeout, 1 on an error. Logs go to stderr.
"""

import argparse
import asyncio
import json
import logging
import sys
import time

import aioice.ice

# Loopback only: aioice would offer every interface address (and never 127.0.0.1).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.sdp import candidate_from_sdp  # noqa: E402

try:  # websockets >= 13
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # older websockets: the legacy client has the same surface here
    from websockets import connect as ws_connect

START = time.monotonic()


def log(peer_id, msg, *args):
    text = msg % args if args else msg
    print(f"[aiortc {peer_id} +{time.monotonic() - START:6.3f}s] {text}", file=sys.stderr, flush=True)


class RpcError(Exception):
    pass


class Signaling:
    """JSON-RPC client: requests wait for their response; notifications go to a queue that
    one task handles in order (so a candidate is never handled before its offer)."""

    def __init__(self, ws, peer_id):
        self.ws = ws
        self.peer_id = peer_id
        self.next_id = 1
        self.pending = {}
        self.notifications = asyncio.Queue()
        self.closed = asyncio.Event()

    async def read_loop(self):
        try:
            async for frame in self.ws:
                try:
                    msg = json.loads(frame)
                except ValueError:
                    log(self.peer_id, "unparsable frame: %r", frame[:200])
                    continue
                if "method" in msg:
                    if "id" not in msg:
                        await self.notifications.put((msg["method"], msg.get("params") or {}))
                    continue
                fut = self.pending.pop(msg.get("id"), None)
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    fut.set_exception(RpcError(json.dumps(msg["error"])))
                else:
                    fut.set_result(msg.get("result"))
        except Exception as e:  # connection closed abnormally
            log(self.peer_id, "signaling read ended: %r", e)
        finally:
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(RpcError("signaling closed"))
            await self.notifications.put(None)

    async def call(self, method, params):
        rid = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        return await asyncio.wait_for(fut, 10)


class Peer:
    def __init__(self, args):
        self.args = args
        self.id = args.id
        self.sig = None
        self.known = set()
        self.peer_known = asyncio.Event()
        self.pc = None
        self.remote = None
        self.remote_described = False
        self.early_candidates = []  # (from, RTCIceCandidate) before the remote description
        self.done = asyncio.Event()
        self.was_connected = False
        self.failed = None

    def log(self, msg, *args):
        log(self.id, msg, *args)

    # --- peer connection -------------------------------------------------------------

    def new_pc(self, remote):
        if self.pc is not None:
            self.log("replacing the connection to %s", self.remote)
            asyncio.ensure_future(self.pc.close())
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc, self.remote, self.remote_described = pc, remote, False

        @pc.on("connectionstatechange")
        async def on_state():
            if pc is not self.pc:
                return
            self.log("connection state %s", pc.connectionState)
            if pc.connectionState == "connected":
                self.was_connected = True
            elif pc.connectionState in ("failed", "closed"):
                if pc.connectionState == "failed":
                    self.failed = "connection failed"
                self.done.set()

        @pc.on("iceconnectionstatechange")
        async def on_ice():
            self.log("ICE state %s", pc.iceConnectionState)

        @pc.on("datachannel")
        def on_datachannel(ch):
            self.log("remote channel %r (id %s) arrived", ch.label, ch.id)
            self.wire(ch)

        return pc

    def wire(self, ch):
        def opened():
            self.log("channel %r open: sending hello", ch.label)
            ch.send("hello from aiortc")

        @ch.on("message")
        def on_message(msg):
            if len(msg) <= 100:
                self.log("channel %r got %r", ch.label, msg)
            else:
                self.log("channel %r got %d %s", ch.label, len(msg), "chars" if isinstance(msg, str) else "bytes")
            if self.args.echo:
                ch.send("echo:" + msg if isinstance(msg, str) else b"echo:" + msg)

        @ch.on("close")
        def on_close():
            self.log("channel %r closed", ch.label)

        # A channel the remote opened is open already when "datachannel" fires.
        if ch.readyState == "open":
            opened()
        else:
            ch.on("open", opened)

    async def described(self, remote):
        """The remote description is set: apply the candidates held until now."""
        self.remote_described = True
        held, self.early_candidates = self.early_candidates, []
        for frm, c in held:
            if frm == remote:
                await self.add_candidate(c)

    async def add_candidate(self, c):
        try:
            await self.pc.addIceCandidate(c)
        except Exception as e:
            self.log("addIceCandidate(%s) failed: %r", c, e)

    # --- signaling ---------------------------------------------------------------------

    async def call(self, remote):
        pc = self.new_pc(remote)
        self.wire(pc.createDataChannel("data"))
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        self.log("sending offer to %s", remote)
        res = await self.sig.call("offer", {"to_peer_id": remote, "sdp": pc.localDescription.sdp, "type": "offer"})
        self.log("offer accepted by the server: %s", res)

    async def on_offer(self, p):
        remote = p["from_peer_id"]
        self.log("offer from %s", remote)
        pc = self.new_pc(remote)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=p["sdp"], type=p.get("type") or "offer"))
        await self.described(remote)
        await pc.setLocalDescription(await pc.createAnswer())
        self.log("sending answer to %s", remote)
        await self.sig.call("answer", {"to_peer_id": remote, "sdp": pc.localDescription.sdp, "type": "answer"})

    async def on_answer(self, p):
        remote = p["from_peer_id"]
        if self.pc is None or remote != self.remote or self.pc.signalingState != "have-local-offer":
            self.log("ignoring an unexpected answer from %s", remote)
            return
        self.log("answer from %s", remote)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=p["sdp"], type=p.get("type") or "answer"))
        await self.described(remote)

    async def on_candidate(self, p):
        remote = p["from_peer_id"]
        text = (p.get("candidate") or "").strip()
        if not text:
            return  # end-of-candidates marker
        if text.startswith("candidate:"):
            text = text[len("candidate:"):]
        try:
            c = candidate_from_sdp(text)
        except Exception as e:
            self.log("unparsable candidate %r: %r", p.get("candidate"), e)
            return
        c.sdpMid = p.get("sdp_mid")
        c.sdpMLineIndex = p.get("sdp_mline_index")
        if c.sdpMid is None and c.sdpMLineIndex is None:
            c.sdpMLineIndex = 0
        self.log("remote candidate from %s: %s", remote, text)
        if self.pc is not None and remote == self.remote and self.remote_described:
            await self.add_candidate(c)
        else:
            self.early_candidates.append((remote, c))

    async def handle(self, method, p):
        if method == "offer":
            await self.on_offer(p)
        elif method == "answer":
            await self.on_answer(p)
        elif method == "ice_candidate":
            await self.on_candidate(p)
        elif method == "peer_joined":
            self.known.add(p.get("peer_id"))
            if p.get("peer_id") == self.args.call:
                self.peer_known.set()
        elif method in ("peer_left", "peer_disconnected"):
            self.known.discard(p.get("peer_id"))
            if p.get("peer_id") == self.remote:
                self.log("%s: %s", method, self.remote)
                self.done.set()
        else:
            self.log("notification %s ignored", method)

    async def dispatch(self):
        while True:
            item = await self.sig.notifications.get()
            if item is None:
                self.log("signaling closed")
                self.done.set()
                return
            method, params = item
            try:
                await self.handle(method, params)
            except Exception as e:
                self.log("handling %s failed: %r", method, e)
                self.failed = f"handling {method}: {e!r}"
                self.done.set()
                return

    async def run(self):
        async with ws_connect(self.args.signal) as ws:
            self.sig = Signaling(ws, self.id)
            reader = asyncio.create_task(self.sig.read_loop())
            res = await self.sig.call(
                "announce", {"peer_id": self.id, "capabilities": {"audio": False, "video": False, "data": True}}
            )
            self.log("announced: %s", res)
            self.known.update(res.get("other_peers") or [])
            dispatcher = asyncio.create_task(self.dispatch())
            if self.args.call:
                if self.args.call in self.known:
                    self.peer_known.set()
                waiting = asyncio.create_task(self.peer_known.wait())
                stop = asyncio.create_task(self.done.wait())
                await asyncio.wait([waiting, stop], return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if self.peer_known.is_set():
                    await self.call(self.args.call)
            await self.done.wait()
            dispatcher.cancel()
            if self.pc is not None:
                await self.pc.close()
            await ws.close()
            reader.cancel()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signal", required=True, help="signaling server URL, ws://...")
    ap.add_argument("--id", required=True, help="peer id to announce")
    ap.add_argument("--call", help="peer id to call (else: answer offers)")
    ap.add_argument("--echo", action="store_true", help='send "echo:"+message back for every message')
    ap.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    ap.add_argument("--debug", action="store_true", help="aiortc/aioice debug logs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)

    peer = Peer(args)
    try:
        await asyncio.wait_for(peer.run(), args.timeout)
    except asyncio.TimeoutError:
        peer.log("timeout after %.0f s (connected: %s)", args.timeout, peer.was_connected)
        return 2
    except Exception as e:
        peer.log("error: %r", e)
        return 1
    if peer.failed:
        peer.log("failed: %s", peer.failed)
        return 1
    peer.log("done (connected: %s)", peer.was_connected)
    return 0 if peer.was_connected else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
