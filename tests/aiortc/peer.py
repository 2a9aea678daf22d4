#!/usr/bin/env python3
"""An aiortc peer speaking remotemedia-webrtc's signaling dialect (JSON-RPC 2.0 over
WebSocket, see SIGNALING-PROTOCOL), for the interop tests in tests/aiortc.rs.

    peer.py --signal ws://127.0.0.1:PORT --id ID [--call PEER] [--echo] [--timeout S]
            [--audio [--tone HZ] [--audio-report-after S]] [--video [--video-report-after N]]

It announces ID. With --call it waits until PEER is on the server (announce's other_peers or
a peer_joined notification), creates a data channel "data" and sends an offer; otherwise it
answers the offers it gets. aiortc does not trickle: its descriptions carry all its
candidates. It does accept trickled `ice_candidate` notifications, held until the remote
description is set. When a channel opens it sends "hello from aiortc"; with --echo it sends
"echo:" + message back for every message (except its own kinds of report, "audio-result:..."
and "video-result:...").
Loopback only: host candidates are 127.0.0.1 and there is no STUN server.

With --audio it also sends and receives audio on one sendrecv audio m-line (Opus, 48 kHz):
  * It sends a continuous sine of --tone HZ (default 440) at amplitude 0.3 of full scale
    (RMS -13.5 dBFS) as s16 mono 48 kHz frames of 20 ms (960 samples), paced in real time.
    aiortc's Opus encoder upmixes it to stereo at -3 dB (libswresample's centre mix level),
    so the receiver decodes amplitude 0.21 in each channel: about -16.5 dBFS RMS.
    The caller adds the track before its offer; the answerer adds it after applying the
    offer, to the offered audio transceiver (which makes that m-line sendrecv; an offer
    without audio gets no track). --tone 0 sends no track but still receives (the caller
    then offers a recvonly audio m-line, the answerer answers recvonly).
  * It analyses the first remote audio track: it skips the first 0.3 s, takes the next
    --audio-report-after S seconds (default 1.5), mixes them to mono and sends ONE text
    message on the "data" channel (after "hello from aiortc"; when the channel opens if it
    is not open yet), also logged:
        audio-result:{"freq": 440.2, "rms_dbfs": -13.5, "rate": 48000, "channels": 2,
                      "frames": 75, "samples": 72000, "method": "fft"}
    freq: dominant frequency in Hz (windowed FFT peak with numpy, else the rate of
    upward zero crossings; null without a signal); rms_dbfs: RMS of the mono mix in dB
    relative to full-scale amplitude 1.0 (so a full-scale sine is -3.0; floor -120);
    rate, channels: of the received frames (aiortc decodes Opus to s16 stereo 48 kHz);
    frames: frames that contributed to the analysed window; samples: its length.

With --video it also sends and receives video on one sendrecv video m-line. aiortc supports
VP8 and H264 only (no VP9): it offers VP8 (+ rtx) and H264, and answers an offer that lists
VP9 first with VP8 (the offer's order, minus what aiortc lacks).
  * It sends a moving grey-scale test pattern, 640x480 at 30 fps (yuv420p, chroma neutral
    128; paced in real time by aiortc's VideoStreamTrack clock, 90 kHz timestamps):
      - background: a vertical luma gradient, Y = 16 at the top row to 96 at the bottom row;
      - a bright vertical bar (Y = 235), 32 px wide and full height, whose left edge is at
        x = (8 * n) mod 640 for frame n (one sweep every 80 frames, 2.67 s), clipped at
        the right edge;
      - on top of it the frame number n (from 0) as 16 blocks of 32x32 px (most significant
        bit first) in rows 8..39, block i at x = 16 + 38 * i: Y = 235 for a 1, Y = 16 for a 0.
    aiortc's VP8 encoder starts at 500 kbps (adapting to REMB between 250 kbps and 1.5 Mbps)
    and sends a key frame on PLI/FIR, and also whenever a REMB moves its target by more
    than 10% (aiortc then recreates the encoder; its GOP is otherwise 3000 frames). The
    caller adds the track before its offer; the
    answerer adds it to the offered video transceiver (an offer without video gets none).
  * It analyses the first remote video track: the first --video-report-after N frames
    (default 60) as decoded, then sends ONE text message on the "data" channel (like the
    audio report, and after it if both are due at once), also logged:
        video-result:{"frames": 60, "width": 640, "height": 480, "sizes": ["640x480"],
                      "mean_luma": 68.32, "motion": 7.559, "motion_min": 5.619,
                      "motion_max": 13.061, "static_pairs": 0, "fps": 25.22,
                      "format": "yuv420p", "codec": "video/VP8", "payload_type": 97,
                      "method": "python"}
    width, height: of the last analysed frame; sizes: the distinct sizes in order of arrival;
    mean_luma: mean Y (0..255, video range is 16..235) over every pixel of every analysed
    frame; motion: mean absolute difference of Y between consecutive frames (averaged over
    the pixels of every 2nd column of every 2nd row, then over the frame pairs of equal
    size), motion_min/max: its smallest/largest value for one pair, static_pairs: pairs
    with a difference below 0.05 (a frozen picture); all null with fewer than 2 frames. A
    moving picture gives motion > 0 (this pattern: about 5.6 after a VP8 round trip; the
    page's canvas pattern, whose text changes too: about 7.5; Chromium's fake camera: about
    6; a frozen picture: 0). fps: (frames - 1) over
    the RTP-timestamp span of the window; format: the decoded pixel format; codec,
    payload_type: of the RTP packets that arrived on the track's receiver (else the first
    negotiated codec; null if unknown); method: "numpy" or "python" (same measure).

Exits 0 when the connection closes (or the remote leaves) after having been connected, 2 on
timeout, 1 on an error. Logs go to stderr.
"""

import argparse
import array
import asyncio
import fractions
import json
import logging
import math
import operator
import sys
import time

import aioice.ice

# Loopback only: aioice would offer every interface address (and never 127.0.0.1).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

import av  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack  # noqa: E402
from aiortc.sdp import candidate_from_sdp  # noqa: E402

try:  # optional: av does not need it, aiortc 1.16 does not either
    import numpy as np
except ImportError:
    np = None

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


# --- reports ---------------------------------------------------------------------------

VIDEO_RESULT_PREFIX = "video-result:"  # AUDIO_RESULT_PREFIX is defined with the audio below


def is_report(msg):
    """Is msg (str or bytes) one of the reports this peer sends (never echoed)?"""
    prefixes = (AUDIO_RESULT_PREFIX, VIDEO_RESULT_PREFIX)
    if isinstance(msg, str):
        return msg.startswith(prefixes)
    return bytes(msg).startswith(tuple(x.encode() for x in prefixes))


# --- audio ---------------------------------------------------------------------------

AUDIO_RATE = 48000
AUDIO_FRAME_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
TONE_AMPLITUDE = 0.3  # of full scale
AUDIO_SKIP_S = 0.3  # received audio ignored before the analysed window
AUDIO_RESULT_PREFIX = "audio-result:"


class ToneTrack(MediaStreamTrack):
    """A continuous sine as s16 mono 48 kHz frames of 20 ms, paced in real time (as aiortc's
    AudioStreamTrack paces its silence)."""

    kind = "audio"

    def __init__(self, freq, amplitude=TONE_AMPLITUDE):
        super().__init__()
        self.freq = freq
        self.scale = amplitude * 32767
        self.step = 2 * math.pi * freq / AUDIO_RATE  # phase advance per sample
        self.phase = 0.0
        self.pts = 0
        self.start = None

    def samples(self):
        n, ph, step, scale = AUDIO_FRAME_SAMPLES, self.phase, self.step, self.scale
        if np is not None:
            data = np.rint(np.sin(ph + step * np.arange(n)) * scale).astype(np.int16).tobytes()
        else:
            data = array.array("h", [int(round(math.sin(ph + step * i) * scale)) for i in range(n)]).tobytes()
        self.phase = (ph + step * n) % (2 * math.pi)
        return data

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.time()
        else:
            wait = self.start + self.pts / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME_SAMPLES)
        frame.planes[0].update(self.samples())  # s16 is native-endian, as array/numpy write it
        frame.pts = self.pts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = AUDIO_TIME_BASE
        self.pts += AUDIO_FRAME_SAMPLES
        return frame


# sample format (without the planar "p") -> (array typecode, offset, scale to [-1, 1))
_SAMPLE_FORMATS = {
    "u8": ("B", -128.0, 1 / 128),
    "s16": ("h", 0.0, 1 / 32768),
    "s32": ("i", 0.0, 1 / 2147483648),
    "s64": ("q", 0.0, 1 / 9223372036854775808),
    "flt": ("f", 0.0, 1.0),
    "dbl": ("d", 0.0, 1.0),
}


def channel_count(frame):
    layout = frame.layout
    n = getattr(layout, "nb_channels", None)
    return n if n else len(layout.channels)


def frame_to_mono(frame):
    """The frame's samples mixed to mono floats in [-1, 1): a numpy array with numpy, else a list."""
    name, channels, n = frame.format.name, channel_count(frame), frame.samples
    planar = frame.format.is_planar
    base = name[:-1] if planar else name
    code, offset, scale = _SAMPLE_FORMATS[base]
    if np is not None:
        a = frame.to_ndarray()  # packed: (1, n * channels) interleaved; planar: (channels, n)
        a = a.reshape(-1, channels).T if not planar else a.reshape(channels, -1)
        return ((a.astype(np.float64) + offset) * scale).mean(axis=0)
    size = array.array(code).itemsize
    if planar:
        chans = []
        for plane in frame.planes[:channels]:
            chans.append(array.array(code, bytes(plane)[: n * size]))
    else:
        inter = array.array(code, bytes(frame.planes[0])[: n * channels * size])
        chans = [inter[c::channels] for c in range(channels)]
    k = scale / channels
    return [(sum(v) + offset * channels) * k for v in zip(*chans)]


def dominant_frequency(x, rate):
    """(Hz or None, method) of the mono signal x (numpy array or list)."""
    if np is not None:
        x = np.asarray(x, dtype=np.float64)
        x = x - x.mean()
        if len(x) < 16 or not np.any(x):
            return None, "fft"
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        k = int(np.argmax(spec[1:])) + 1
        delta = 0.0
        if 1 <= k < len(spec) - 1:  # parabolic interpolation on the log magnitude
            a, b, c = (math.log(max(v, 1e-300)) for v in spec[k - 1 : k + 2])
            den = a - 2 * b + c
            if den != 0:
                delta = 0.5 * (a - c) / den
        return round((k + delta) * rate / len(x), 2), "fft"
    # Pure Python: upward zero crossings with hysteresis, linearly interpolated.
    mean = sum(x) / len(x) if x else 0.0
    x = [v - mean for v in x]
    peak = max((abs(v) for v in x), default=0.0)
    if peak <= 0:
        return None, "zero-crossings"
    hyst = 0.1 * peak
    armed, first, last, count = False, None, None, 0
    for i in range(1, len(x)):
        v = x[i]
        if v < -hyst:
            armed = True
        elif armed and v >= 0 > x[i - 1]:
            t = i - 1 + x[i - 1] / (x[i - 1] - v)
            if first is None:
                first = t
            last, count, armed = t, count + 1, False
    if count < 2 or last <= first:
        return None, "zero-crossings"
    return round((count - 1) * rate / (last - first), 2), "zero-crossings"


def analyse(x, rate, channels, frames):
    n = len(x)
    freq, method = dominant_frequency(x, rate)
    if np is not None:
        xs = np.asarray(x, dtype=np.float64)
        rms = float(np.sqrt(np.mean(xs * xs))) if n else 0.0
    else:
        rms = math.sqrt(sum(v * v for v in x) / n) if n else 0.0
    dbfs = round(max(20 * math.log10(rms), -120.0), 2) if rms > 0 else -120.0
    return {"freq": freq, "rms_dbfs": dbfs, "rate": rate, "channels": channels, "frames": frames,
            "samples": n, "method": method}


# --- video ---------------------------------------------------------------------------

VIDEO_WIDTH, VIDEO_HEIGHT = 640, 480
VIDEO_BAR_WIDTH = 32
VIDEO_BAR_STEP = 8  # px per frame
VIDEO_BAR_Y = 235
VIDEO_BG_TOP, VIDEO_BG_BOTTOM = 16, 96
VIDEO_COUNTER_BITS = 16
VIDEO_BLOCK = 32  # counter block size (px)
VIDEO_BLOCK_PITCH = 38
VIDEO_COUNTER_X, VIDEO_COUNTER_Y = 16, 8
VIDEO_STATIC_BELOW = 0.05  # a frame pair with less mean |dY| counts as static


class PatternTrack(VideoStreamTrack):
    """The moving test pattern (see the module docstring) as yuv420p 640x480 frames at 30 fps,
    built from bytes (no numpy needed)."""

    kind = "video"

    def __init__(self):
        super().__init__()
        w, h = VIDEO_WIDTH, VIDEO_HEIGHT
        self.n = 0
        self.bg = [VIDEO_BG_TOP + ((VIDEO_BG_BOTTOM - VIDEO_BG_TOP) * y + (h - 1) // 2) // (h - 1) for y in range(h)]
        self.bar = bytes([VIDEO_BAR_Y]) * VIDEO_BAR_WIDTH
        self.one = bytes([VIDEO_BAR_Y]) * VIDEO_BLOCK
        self.zero = bytes([16]) * VIDEO_BLOCK
        self.chroma = None  # (line_size, bytes) of the neutral chroma planes

    def luma_row(self, y, x0, x1, bits):
        w, v = VIDEO_WIDTH, self.bg[y]
        row = bytearray([v]) * w
        row[x0:x1] = self.bar[: x1 - x0]
        if bits is not None and VIDEO_COUNTER_Y <= y < VIDEO_COUNTER_Y + VIDEO_BLOCK:
            for i, bit in enumerate(bits):
                x = VIDEO_COUNTER_X + VIDEO_BLOCK_PITCH * i
                row[x : x + VIDEO_BLOCK] = self.one if bit else self.zero
        return row

    def picture(self, line_size):
        """The Y plane of frame self.n with rows of line_size bytes."""
        n, w, h = self.n, VIDEO_WIDTH, VIDEO_HEIGHT
        x0 = (VIDEO_BAR_STEP * n) % w
        x1 = min(x0 + VIDEO_BAR_WIDTH, w)
        value = n % (1 << VIDEO_COUNTER_BITS)
        bits = [(value >> (VIDEO_COUNTER_BITS - 1 - i)) & 1 for i in range(VIDEO_COUNTER_BITS)]
        pad = bytes(line_size - w)
        rows = []
        for y in range(h):
            rows.append(self.luma_row(y, x0, x1, bits))
            if pad:
                rows.append(pad)
        return b"".join(rows)

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(VIDEO_WIDTH, VIDEO_HEIGHT, "yuv420p")
        y, u, v = frame.planes
        y.update(self.picture(y.line_size))
        if self.chroma is None or self.chroma[0] != (u.line_size, u.buffer_size):
            self.chroma = ((u.line_size, u.buffer_size), bytes([128]) * u.buffer_size)
        u.update(self.chroma[1])
        v.update(self.chroma[1])
        frame.pts = pts
        frame.time_base = time_base
        self.n += 1
        return frame


def luma_plane(frame):
    """(bytes of the Y plane, line size, width, height) of a decoded frame."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12", "nv21", "gray"):
        frame = frame.reformat(format="yuv420p")
    p = frame.planes[0]
    return bytes(p), p.line_size, frame.width, frame.height


class VideoAnalysis:
    """Accumulates the luma statistics of consecutive decoded frames (see the docstring)."""

    def __init__(self):
        self.frames = 0
        self.sizes = []
        self.luma_sum = 0
        self.luma_count = 0
        self.diffs = []
        self.prev = None  # (width, height, subsampled Y)
        self.first_pts = self.last_pts = None
        self.time_base = None
        self.format = None
        self.width = self.height = None

    def add(self, frame):
        data, ls, w, h = luma_plane(frame)
        self.frames += 1
        self.format = frame.format.name
        size = f"{w}x{h}"
        if size not in self.sizes:
            self.sizes.append(size)
        self.width, self.height = w, h
        if frame.pts is not None and frame.time_base is not None:
            if self.first_pts is None:
                self.first_pts = frame.pts
            self.last_pts, self.time_base = frame.pts, frame.time_base
        if np is not None:
            y = np.frombuffer(data, dtype=np.uint8)[: ls * h].reshape(h, ls)[:, :w]
            self.luma_sum += int(y.sum(dtype=np.int64))
            sub = y[::2, ::2].astype(np.int16)
            if self.prev is not None and self.prev[:2] == (w, h):
                self.diffs.append(float(np.abs(sub - self.prev[2]).mean()))
        else:
            if ls == w:
                self.luma_sum += sum(data[: w * h])
            else:
                self.luma_sum += sum(sum(data[r * ls : r * ls + w]) for r in range(h))
            sub = b"".join(data[r * ls : r * ls + w : 2] for r in range(0, h, 2))
            if self.prev is not None and self.prev[:2] == (w, h):
                self.diffs.append(sum(map(abs, map(operator.sub, sub, self.prev[2]))) / len(sub))
        self.luma_count += w * h
        self.prev = (w, h, sub)

    def result(self, codec):
        d = self.diffs
        fps = None
        if self.frames > 1 and self.first_pts is not None and self.last_pts != self.first_pts:
            span = float((self.last_pts - self.first_pts) * self.time_base)
            fps = round((self.frames - 1) / span, 2) if span > 0 else None
        return {
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "sizes": self.sizes,
            "mean_luma": round(self.luma_sum / self.luma_count, 2) if self.luma_count else None,
            "motion": round(sum(d) / len(d), 3) if d else None,
            "motion_min": round(min(d), 3) if d else None,
            "motion_max": round(max(d), 3) if d else None,
            "static_pairs": sum(1 for x in d if x < VIDEO_STATIC_BELOW) if d else None,
            "fps": fps,
            "format": self.format,
            "codec": codec.get("mimeType"),
            "payload_type": codec.get("payloadType"),
            "method": "numpy" if np is not None else "python",
        }


def is_media_codec(c):
    return c.mimeType.lower().split("/")[-1] not in ("rtx", "red", "ulpfec", "flexfec-03")


class ReceivedCodec:
    """Best effort: which codec the RTP packets on a receiver use. Wraps the receiver's packet
    handler (aiortc-internal) to note their payload types; falls back to the transceiver's
    first negotiated codec."""

    def __init__(self, pc, track):
        self.pc, self.track, self.payload_types = pc, track, []
        self.transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
        try:
            receiver = self.transceiver.receiver
            inner = receiver._handle_rtp_packet

            async def noting(packet, *args, **kwargs):
                if packet.payload_type not in self.payload_types:
                    self.payload_types.append(packet.payload_type)
                return await inner(packet, *args, **kwargs)

            receiver._handle_rtp_packet = noting
        except Exception:
            pass

    def get(self):
        codecs = list(getattr(self.transceiver, "_codecs", None) or [])
        by_pt = {c.payloadType: c for c in codecs}
        for pt in self.payload_types:
            c = by_pt.get(pt)
            if c is not None and is_media_codec(c):
                return {"mimeType": c.mimeType, "payloadType": c.payloadType}
        for c in codecs:
            if is_media_codec(c):
                return {"mimeType": c.mimeType, "payloadType": c.payloadType}
        return {}


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
        self.data_channel = None  # the "data" channel, for the reports
        self.reports = {}  # prefix -> the report to send, once per connection
        self.reports_sent = set()
        self.tasks = set()

    def log(self, msg, *args):
        log(self.id, msg, *args)

    # --- peer connection -------------------------------------------------------------

    def new_pc(self, remote):
        if self.pc is not None:
            self.log("replacing the connection to %s", self.remote)
            asyncio.ensure_future(self.pc.close())
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc, self.remote, self.remote_described = pc, remote, False
        self.data_channel, self.reports, self.reports_sent = None, {}, set()
        analysing = []
        watching = []

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

        @pc.on("track")
        def on_track(track):
            self.log("remote %s track %s arrived", track.kind, track.id)
            if track.kind == "audio" and self.args.audio and not analysing:
                analysing.append(track)
                task = asyncio.ensure_future(self.analyse_audio(pc, track))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif track.kind == "video" and self.args.video and not watching:
                watching.append(track)
                task = asyncio.ensure_future(self.analyse_video(pc, track, ReceivedCodec(pc, track)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        return pc

    def add_audio(self, pc, answering):
        """--audio: the local tone track (or, with --tone 0 when calling, a recvonly m-line)."""
        if not self.args.audio:
            return
        has_audio = any(t.kind == "audio" for t in pc.getTransceivers())
        if answering and not has_audio:
            self.log("the offer has no audio m-line: no audio")
            return
        if self.args.tone > 0:
            pc.addTrack(ToneTrack(self.args.tone))  # answering: attaches to the offered transceiver
            self.log("sending a %g Hz tone", self.args.tone)
        elif not answering:
            pc.addTransceiver("audio", direction="recvonly")
            self.log("receiving audio only")

    def add_video(self, pc, answering):
        """--video: the local test pattern track (answering: on the offered video transceiver)."""
        if not self.args.video:
            return
        has_video = any(t.kind == "video" for t in pc.getTransceivers())
        if answering and not has_video:
            self.log("the offer has no video m-line: no video")
            return
        pc.addTrack(PatternTrack())
        self.log("sending the %dx%d test pattern", VIDEO_WIDTH, VIDEO_HEIGHT)

    async def analyse_video(self, pc, track, codec):
        """Analyse the first --video-report-after frames of the remote video, report them;
        then keep draining the track."""
        stats = VideoAnalysis()
        want = self.args.video_report_after
        reported = False
        try:
            while True:
                frame = await track.recv()
                if reported:
                    continue
                if stats.frames == 0:
                    self.log("first remote video frame: %s %dx%d, pts %s, time_base %s",
                             frame.format.name, frame.width, frame.height, frame.pts, frame.time_base)
                stats.add(frame)
                if stats.frames < want:
                    continue
                result = stats.result(codec.get())
                reported = True
                self.log("video analysed: %s", json.dumps(result))
                if pc is self.pc:
                    self.reports[VIDEO_RESULT_PREFIX] = result
                    self.send_reports()
        except MediaStreamError:
            self.log("remote video track ended%s (%d frames)", "" if reported else " before the report", stats.frames)
        except Exception as e:
            self.log("video analysis failed: %r", e)

    async def analyse_audio(self, pc, track):
        """Skip AUDIO_SKIP_S of the remote audio, analyse the next --audio-report-after
        seconds, report them; then keep draining the track."""
        skip = want = None
        rate = channels = None
        chunks, frames, have = [], 0, 0
        reported = False
        try:
            while True:
                frame = await track.recv()
                if reported:
                    continue
                if rate is None:
                    rate, channels = frame.sample_rate, channel_count(frame)
                    skip = int(AUDIO_SKIP_S * rate)
                    want = int(self.args.audio_report_after * rate)
                    self.log("first remote audio frame: %s %s %d Hz, %d samples, pts %s, time_base %s",
                             frame.format.name, frame.layout.name, rate, frame.samples, frame.pts, frame.time_base)
                elif (frame.sample_rate, channel_count(frame)) != (rate, channels):
                    self.log("remote audio changed to %d Hz, %d channels", frame.sample_rate, channel_count(frame))
                x = frame_to_mono(frame)
                n = len(x)
                if skip >= n:
                    skip -= n
                    continue
                x, skip = x[skip:], 0
                x = x[: want - have]
                chunks.append(x)
                frames += 1
                have += len(x)
                if have < want:
                    continue
                mono = np.concatenate(chunks) if np is not None else [v for c in chunks for v in c]
                result = analyse(mono, rate, channels, frames)
                chunks, reported = [], True
                self.log("audio analysed: %s", json.dumps(result))
                if pc is self.pc:
                    self.reports[AUDIO_RESULT_PREFIX] = result
                    self.send_reports()
        except MediaStreamError:
            self.log("remote audio track ended%s", "" if reported else " before the report")
        except Exception as e:
            self.log("audio analysis failed: %r", e)

    def send_reports(self):
        """Sends each ready report once, when the "data" channel is open (audio before video)."""
        ch = self.data_channel
        if ch is None or ch.readyState != "open":
            return
        for prefix in (AUDIO_RESULT_PREFIX, VIDEO_RESULT_PREFIX):
            if prefix not in self.reports or prefix in self.reports_sent:
                continue
            self.reports_sent.add(prefix)
            text = prefix + json.dumps(self.reports[prefix])
            self.log("channel %r: sending %s", ch.label, text)
            ch.send(text)

    def wire(self, ch):
        if ch.label == "data":
            self.data_channel = ch

        def opened():
            self.log("channel %r open: sending hello", ch.label)
            ch.send("hello from aiortc")
            if ch is self.data_channel:
                self.send_reports()  # if they were ready before the channel

        @ch.on("message")
        def on_message(msg):
            if len(msg) <= 100 or (isinstance(msg, str) and is_report(msg)):
                self.log("channel %r got %r", ch.label, msg)
            else:
                self.log("channel %r got %d %s", ch.label, len(msg), "chars" if isinstance(msg, str) else "bytes")
            if self.args.echo:
                if not is_report(msg):
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
        self.add_audio(pc, answering=False)
        self.add_video(pc, answering=False)
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
        self.add_audio(pc, answering=True)
        self.add_video(pc, answering=True)
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
                "announce", {"peer_id": self.id, "capabilities": {"audio": self.args.audio, "video": self.args.video, "data": True}}
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
    ap.add_argument("--audio", action="store_true", help="send a tone and analyse the received audio (Opus)")
    ap.add_argument("--tone", type=float, default=440.0, help="frequency of the sent sine in Hz; 0: send no audio")
    ap.add_argument(
        "--audio-report-after", type=float, default=1.5, help="seconds of received audio to analyse (after 0.3 s)"
    )
    ap.add_argument("--video", action="store_true", help="send a test pattern and analyse the received video (VP8)")
    ap.add_argument(
        "--video-report-after", type=int, default=60, help="received video frames to analyse before the report"
    )
    ap.add_argument("--debug", action="store_true", help="aiortc/aioice debug logs")
    args = ap.parse_args()
    if args.tone < 0 or args.audio_report_after <= 0:
        ap.error("--tone must be >= 0 and --audio-report-after > 0")
    if args.video_report_after < 1:
        ap.error("--video-report-after must be >= 1")
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
