// Video: outgoing VP8/VP9 tracks fed with raw frames (VideoTrack), and decoded frames of remote
// tracks (Transport.TryPollVideo / PollVideo).
using System;
using System.Runtime.InteropServices;

namespace RemoteMedia.WebRtc
{
    /// <summary>RMW_PIXEL_*: the layout of a frame you send.</summary>
    public enum PixelFormat
    {
        /// <summary>Planes Y, U, V; chroma planes (width + 1) / 2 x (height + 1) / 2.</summary>
        I420 = 0,
        /// <summary>Planes Y and interleaved UV.</summary>
        Nv12 = 1,
        /// <summary>One plane, bytes R, G, B, A in memory (e.g. a texture read back from Unity).</summary>
        Rgba = 2,
        /// <summary>One plane, bytes B, G, R, A in memory.</summary>
        Bgra = 3,
    }

    /// <summary>rmw_video_format_t: the layout of received frames (TransportConfig.VideoOutputFormat).</summary>
    public enum VideoFormat
    {
        /// <summary>Planes Y, U, V ("i420", the default).</summary>
        I420 = 0,
        /// <summary>One plane of R, G, B, A bytes ("rgba").</summary>
        Rgba = 1,
    }

    /// <summary>
    /// How an outgoing video track encodes (rmw_video_track_config_t). A new instance holds the
    /// library's defaults (rmw_video_track_config_default): 1500 kbit/s, 30 fps, a keyframe at
    /// least every 3000 frames, the codec's real-time speed, one encoder thread.
    /// </summary>
    public sealed class VideoTrackConfig
    {
        /// <summary>RMW_VIDEO_SPEED_DEFAULT: as Speed, the codec's real-time default.</summary>
        public const int SpeedDefault = 99;

        /// <summary>Target bitrate, 30..50000 kbit/s (VideoTrack.SetBitrate changes it).</summary>
        public int BitrateKbps;
        /// <summary>Floor when following the peers' bandwidth estimates (REMB), 30..BitrateKbps.</summary>
        public int MinBitrateKbps;
        /// <summary>Nominal frame rate for rate control, 1..120.</summary>
        public int Fps;
        /// <summary>Longest run of frames between keyframes (0: libvpx decides).</summary>
        public int KeyframeInterval;
        /// <summary>libvpx cpu-used, -16..16 (higher is faster), or SpeedDefault.</summary>
        public int Speed;
        /// <summary>Encoder threads, 1..16.</summary>
        public int Threads;

        public VideoTrackConfig()
        {
            var d = Native.rmw_video_track_config_default();
            BitrateKbps = (int)d.BitrateKbps;
            MinBitrateKbps = (int)d.MinBitrateKbps;
            Fps = (int)d.Fps;
            KeyframeInterval = (int)d.KeyframeInterval;
            Speed = d.Speed;
            Threads = (int)d.Threads;
        }

        public VideoTrackConfig Clone() { return (VideoTrackConfig)MemberwiseClone(); }

        internal NativeVideoTrackConfig ToNative()
        {
            return new NativeVideoTrackConfig
            {
                BitrateKbps = U32(BitrateKbps, "BitrateKbps"),
                MinBitrateKbps = U32(MinBitrateKbps, "MinBitrateKbps"),
                Fps = U32(Fps, "Fps"),
                KeyframeInterval = U32(KeyframeInterval, "KeyframeInterval"),
                Speed = Speed,
                Threads = U32(Threads, "Threads"),
            };
        }

        internal static uint U32(int v, string name)
        {
            if (v < 0) throw new RmwException(Status.InvalidArgument, name + " " + v + " is out of range");
            return (uint)v;
        }

        public override string ToString()
        {
            return string.Format("{0} kbit/s, {1} fps, keyframe interval {2}, speed {3}, {4} threads",
                BitrateKbps, Fps, KeyframeInterval, Speed == SpeedDefault ? "default" : Speed.ToString(), Threads);
        }
    }

    /// <summary>Counters of an outgoing video track (rmw_video_track_stats_json).</summary>
    public sealed class VideoTrackStats
    {
        /// <summary>The track's id, as VideoTrack.Id (the "video_tracks" of Transport.StatsJson show an internal number instead).</summary>
        public long Track;
        /// <summary>Frames taken by Send.</summary>
        public long FramesIn;
        /// <summary>Frames replaced by a newer one before the encoder took them (the newest frame wins).</summary>
        public long FramesDropped;
        public long FramesEncoded;
        public long KeyframesEncoded;
        /// <summary>Keyframes asked for by peers (PLI/FIR) or by a peer joining.</summary>
        public long KeyframesRequested;
        /// <summary>RTP packets sent, all peers.</summary>
        public long PacketsSent;
        public long BytesSent;
        public int TargetBitrateKbps;
        /// <summary>Size of the last frame encoded.</summary>
        public int Width, Height;
        /// <summary>Peers the last frame went to.</summary>
        public int Peers;
        /// <summary>Peers of the target already carrying another video track of this transport.</summary>
        public int PeersBusy;
        public long EncodeErrors;

        internal static VideoTrackStats Parse(string json)
        {
            var d = Json.Integers(json);
            Func<string, long> get = k => { long v; return d.TryGetValue(k, out v) ? v : 0; };
            return new VideoTrackStats
            {
                Track = get("track"),
                FramesIn = get("frames_in"),
                FramesDropped = get("frames_dropped"),
                FramesEncoded = get("frames_encoded"),
                KeyframesEncoded = get("keyframes_encoded"),
                KeyframesRequested = get("keyframes_requested"),
                PacketsSent = get("packets_sent"),
                BytesSent = get("bytes_sent"),
                TargetBitrateKbps = (int)get("target_bitrate_kbps"),
                Width = (int)get("width"),
                Height = (int)get("height"),
                Peers = (int)get("peers"),
                PeersBusy = (int)get("peers_busy"),
                EncodeErrors = get("encode_errors"),
            };
        }

        public override string ToString()
        {
            return string.Format("frames_in {0}, frames_dropped {1}, frames_encoded {2}, keyframes_encoded {3}, keyframes_requested {4}, " +
                "packets_sent {5}, bytes_sent {6}, target {7} kbit/s, {8}x{9}, peers {10}, peers_busy {11}, encode_errors {12}",
                FramesIn, FramesDropped, FramesEncoded, KeyframesEncoded, KeyframesRequested, PacketsSent, BytesSent,
                TargetBitrateKbps, Width, Height, Peers, PeersBusy, EncodeErrors);
        }
    }

    /// <summary>
    /// A frame to send, any format. Planes holds the planes the format uses (I420: Y, U, V;
    /// NV12: Y, UV; RGBA/BGRA: one), each at least Strides[i] * rows bytes (rows: Height, or
    /// (Height + 1) / 2 for chroma planes). Strides are bytes per row; null means tight rows
    /// (Width, (Width + 1) / 2 for I420 chroma, 2 * ((Width + 1) / 2) for NV12's UV, 4 * Width
    /// for RGBA/BGRA).
    /// </summary>
    public sealed class RawVideoFrame
    {
        public PixelFormat Format;
        public int Width, Height;
        public byte[][] Planes;
        public int[] Strides;

        public RawVideoFrame() { }

        public RawVideoFrame(PixelFormat format, int width, int height, byte[][] planes, int[] strides = null)
        {
            Format = format; Width = width; Height = height; Planes = planes; Strides = strides;
        }

        /// <summary>A black I420 frame of tight planes to fill in (Y 16, U and V 128).</summary>
        public static RawVideoFrame NewI420(int width, int height)
        {
            int cw = (width + 1) / 2, ch = (height + 1) / 2;
            var y = new byte[width * height];
            var u = new byte[cw * ch];
            var v = new byte[cw * ch];
            for (int i = 0; i < y.Length; i++) y[i] = 16;
            for (int i = 0; i < u.Length; i++) { u[i] = 128; v[i] = 128; }
            return new RawVideoFrame(PixelFormat.I420, width, height, new[] { y, u, v }, new[] { width, cw, cw });
        }

        internal static int PlaneCount(PixelFormat f)
        {
            switch (f)
            {
                case PixelFormat.I420: return 3;
                case PixelFormat.Nv12: return 2;
                case PixelFormat.Rgba: case PixelFormat.Bgra: return 1;
            }
            return 0;
        }

        internal static int TightStride(PixelFormat f, int width, int plane)
        {
            int cw = (width + 1) / 2;
            switch (f)
            {
                case PixelFormat.I420: return plane == 0 ? width : cw;
                case PixelFormat.Nv12: return plane == 0 ? width : 2 * cw;
                case PixelFormat.Rgba: case PixelFormat.Bgra: return 4 * width;
            }
            return 0;
        }
    }

    /// <summary>
    /// An outgoing VP8/VP9 track of a transport (Transport.AddVideoTrack). Send copies each frame
    /// and returns without waiting for the encoder (its own thread); a frame the encoder has not
    /// taken yet is replaced by the next (the newest frame wins), so Send never blocks nor
    /// refuses a frame for being early. Safe from any thread. Dispose it when done (idempotent;
    /// a finalizer frees a forgotten one). Disposing the transport frees its tracks; calls
    /// afterwards throw ObjectDisposedException.
    /// </summary>
    public sealed class VideoTrack : IDisposable
    {
        readonly Transport transport;   // keeps the transport (and its handle) alive
        readonly VideoTrackHandle handle;
        readonly VideoTrackConfig config;

        internal VideoTrack(Transport transport, ulong id, VideoTrackConfig config)
        {
            this.transport = transport;
            this.config = config;
            handle = new VideoTrackHandle(id);
        }

        /// <summary>The raw rmw_video_track_t id (0 once disposed).</summary>
        public ulong Id { get { return handle.Id; } }
        public bool IsDisposed { get { return handle.IsReleased; } }
        public Transport Transport { get { return transport; } }
        /// <summary>A copy of the configuration the track was created with (SetBitrate does not change it).</summary>
        public VideoTrackConfig Config { get { return config.Clone(); } }

        ulong Live()
        {
            ulong id = handle.Id;
            if (id == 0) throw new ObjectDisposedException("VideoTrack");
            if (transport.IsDisposed) throw new ObjectDisposedException("Transport");
            return id;
        }

        void Check(int status)
        {
            GC.KeepAlive(this);
            if (status == (int)Status.InvalidHandle)
            {
                if (handle.IsReleased) throw new ObjectDisposedException("VideoTrack");
                if (transport.IsDisposed) throw new ObjectDisposedException("Transport");
            }
            RmwException.Check(status);
        }

        static readonly string[] PlaneNames = { "plane 0", "plane 1", "plane 2" };

        /// <summary>
        /// Pins the managed planes the format uses for the duration of the call (the library
        /// copies them before it returns) and sends. Planes of an unknown format are passed on
        /// as given: the library names the error.
        /// </summary>
        int RawSend(PixelFormat format, int width, int height, byte[][] planes, int[] strides, string[] names)
        {
            if (width < 0 || height < 0)
                throw new RmwException(Status.InvalidArgument, "invalid frame size " + width + "x" + height);
            int used = RawVideoFrame.PlaneCount(format);
            bool known = used > 0;
            if (!known) used = Math.Min(3, planes.Length);
            else if (planes.Length < used)
                throw new RmwException(Status.InvalidArgument, "a " + format + " frame has " + used + " planes, got " + planes.Length);
            var f = new NativeRawVideoFrame { Format = (int)format, Width = (uint)width, Height = (uint)height };
            var pins = new GCHandle[3];
            try
            {
                for (int i = 0; i < used; i++)
                {
                    byte[] p = i < planes.Length ? planes[i] : null;
                    if (p == null && known) throw new ArgumentNullException(names[i]);
                    int stride = strides != null && i < strides.Length ? strides[i]
                        : strides == null ? RawVideoFrame.TightStride(format, width, i) : -1;
                    if (stride < 0)
                        throw new RmwException(Status.InvalidArgument, "no valid stride for " + names[i]);
                    IntPtr ptr = IntPtr.Zero;
                    if (p != null && p.Length > 0)
                    {
                        pins[i] = GCHandle.Alloc(p, GCHandleType.Pinned);
                        ptr = pins[i].AddrOfPinnedObject();
                    }
                    var size = new UIntPtr((uint)(p == null ? 0 : p.Length));
                    switch (i)
                    {
                        case 0: f.Plane0 = ptr; f.Stride0 = (uint)stride; f.Size0 = size; break;
                        case 1: f.Plane1 = ptr; f.Stride1 = (uint)stride; f.Size1 = size; break;
                        default: f.Plane2 = ptr; f.Stride2 = (uint)stride; f.Size2 = size; break;
                    }
                }
                return Native.rmw_video_track_send(Live(), ref f);
            }
            finally
            {
                foreach (var h in pins) if (h.IsAllocated) h.Free();
            }
        }

        /// <summary>
        /// Sends a frame of any format (see RawVideoFrame). RmwException(InvalidArgument) for a
        /// bad size (0, larger than 16383), stride, plane (too short for stride x rows) or format;
        /// ArgumentNullException for a missing plane.
        /// </summary>
        public void Send(RawVideoFrame frame)
        {
            if (frame == null) throw new ArgumentNullException("frame");
            if (frame.Planes == null) throw new ArgumentNullException("frame.Planes");
            Check(RawSend(frame.Format, frame.Width, frame.Height, frame.Planes, frame.Strides, PlaneNames));
        }

        /// <summary>Sends an I420 frame: planes Y, U, V with their strides (bytes per row).</summary>
        public void Send(int width, int height, byte[] y, int strideY, byte[] u, int strideU, byte[] v, int strideV)
        {
            Check(RawSend(PixelFormat.I420, width, height, new[] { y, u, v }, new[] { strideY, strideU, strideV },
                new[] { "y", "u", "v" }));
        }

        /// <summary>Sends an NV12 frame: planes Y and interleaved UV with their strides.</summary>
        public void SendNv12(int width, int height, byte[] y, int strideY, byte[] uv, int strideUV)
        {
            Check(RawSend(PixelFormat.Nv12, width, height, new[] { y, uv }, new[] { strideY, strideUV }, new[] { "y", "uv" }));
        }

        /// <summary>
        /// Sends a one-plane frame (PixelFormat.Rgba or Bgra): stride bytes per row (at least
        /// 4 * width; row padding is never read), pixels at least stride * height bytes.
        /// </summary>
        public void Send(PixelFormat format, int width, int height, byte[] pixels, int stride)
        {
            Check(RawSend(format, width, height, new[] { pixels }, new[] { stride }, new[] { "pixels" }));
        }

        /// <summary>
        /// Sends a one-plane frame (Rgba or Bgra) from native memory, e.g. a Unity NativeArray or
        /// a mapped GPU read-back: byteCount bytes at pixels are copied during the call.
        /// </summary>
        public void Send(PixelFormat format, int width, int height, IntPtr pixels, int stride, long byteCount)
        {
            if (width < 0 || height < 0)
                throw new RmwException(Status.InvalidArgument, "invalid frame size " + width + "x" + height);
            if (byteCount < 0) throw new ArgumentOutOfRangeException("byteCount");
            var f = new NativeRawVideoFrame
            {
                Format = (int)format, Width = (uint)width, Height = (uint)height,
                Plane0 = pixels, Stride0 = VideoTrackConfig.U32(stride, "stride"), Size0 = new UIntPtr((ulong)byteCount),
            };
            Check(Native.rmw_video_track_send(Live(), ref f));
        }

        /// <summary>Re-aims the track (RmwException NotFound for an unknown peer or session).</summary>
        public void SetTarget(TrackTarget target)
        {
            if (target == null) throw new ArgumentNullException("target");
            Check(Native.rmw_video_track_set_target(Live(), (int)target.Kind, Utf8.ToNative(target.Id)));
        }

        /// <summary>Changes the target bitrate (30..50000 kbit/s) from the next frame on.</summary>
        public void SetBitrate(int kbps)
        {
            Check(Native.rmw_video_track_set_bitrate(Live(), VideoTrackConfig.U32(kbps, "kbps")));
        }

        /// <summary>The next frame sent is encoded as a keyframe (peers' PLI/FIR do this by themselves).</summary>
        public void RequestKeyframe() { Check(Native.rmw_video_track_request_keyframe(Live())); }

        /// <summary>The counters as the library's JSON.</summary>
        public string StatsJson()
        {
            ulong id = Live();
            string s;
            try { s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_video_track_stats_json(id, b, ref l); }); }
            catch (RmwException e)
            {
                if (e.Status == Status.InvalidHandle && handle.IsReleased) throw new ObjectDisposedException("VideoTrack");
                if (e.Status == Status.InvalidHandle && transport.IsDisposed) throw new ObjectDisposedException("Transport");
                throw;
            }
            GC.KeepAlive(this);
            return s;
        }

        /// <summary>The counters, parsed.</summary>
        public VideoTrackStats Stats { get { return VideoTrackStats.Parse(StatsJson()); } }

        /// <summary>
        /// Stops the track (a frame not yet encoded is still sent) and frees its id, exactly
        /// once. Idempotent; also fine after the transport was disposed.
        /// </summary>
        public void Dispose()
        {
            int st = handle.Release();
            GC.SuppressFinalize(handle);
            if (st == (int)Status.InvalidHandle && transport.IsDisposed) return;   // freed with its transport
            RmwException.Check(st);
        }
    }

    /// <summary>
    /// A decoded frame from one remote track, copied into managed memory (the native frame has
    /// already been released).
    /// </summary>
    public sealed class VideoFrame
    {
        public ulong TransportId { get; private set; }
        /// <summary>The sending peer.</summary>
        public string PeerId { get; private set; }
        /// <summary>Its track (as in the TrackAdded event).</summary>
        public string TrackId { get; private set; }
        /// <summary>"vp8" or "vp9".</summary>
        public string Codec { get; private set; }
        public int Width { get; private set; }
        public int Height { get; private set; }
        public VideoFormat Format { get; private set; }
        /// <summary>
        /// I420: Y, U, V (chroma planes (Width + 1) / 2 x (Height + 1) / 2); Rgba: one plane.
        /// Plane i holds Strides[i] * rows bytes: pixel (x, y) of Y is Planes[0][y * Strides[0] + x].
        /// </summary>
        public byte[][] Planes { get; private set; }
        public int[] Strides { get; private set; }
        /// <summary>RTP timestamp (90 kHz clock, Rmw.VideoClockRate).</summary>
        public uint RtpTimestamp { get; private set; }
        /// <summary>Arrival of the frame's last packet, microseconds of CLOCK_MONOTONIC (Rmw.ClockUs).</summary>
        public ulong ArrivalUs { get; private set; }
        public bool Keyframe { get; private set; }

        internal static VideoFrame Copy(ref NativeVideoFrame n)
        {
            var f = new VideoFrame();
            f.TransportId = n.Transport;
            f.PeerId = Utf8.FromNative(n.PeerId);
            f.TrackId = Utf8.FromNative(n.TrackId);
            f.Codec = Utf8.FromNative(n.Codec);
            f.Width = (int)n.Width;
            f.Height = (int)n.Height;
            f.Format = (VideoFormat)n.Format;
            f.RtpTimestamp = n.RtpTimestamp;
            f.ArrivalUs = n.ArrivalUs;
            f.Keyframe = n.Keyframe != 0;
            int cw = (f.Width + 1) / 2, ch = (f.Height + 1) / 2;
            int[] rowBytes, rows;
            switch (f.Format)
            {
                case VideoFormat.I420: rowBytes = new[] { f.Width, cw, cw }; rows = new[] { f.Height, ch, ch }; break;
                case VideoFormat.Rgba: rowBytes = new[] { 4 * f.Width }; rows = new[] { f.Height }; break;
                default: throw new RmwException(Status.Internal, "unknown video frame format " + n.Format);
            }
            IntPtr[] ptrs = { n.Plane0, n.Plane1, n.Plane2 };
            uint[] strides = { n.Stride0, n.Stride1, n.Stride2 };
            f.Planes = new byte[rows.Length][];
            f.Strides = new int[rows.Length];
            for (int i = 0; i < rows.Length; i++)
            {
                long stride = strides[i];
                if (ptrs[i] == IntPtr.Zero || stride < rowBytes[i] || rows[i] <= 0 || stride * rows[i] > int.MaxValue)
                    throw new RmwException(Status.Internal, "video frame plane " + i + ": stride " + stride + " for rows of " + rowBytes[i] + " bytes");
                // The C frame carries no plane sizes: read only the bytes the layout guarantees
                // (the last row without its padding) into a stride * rows array.
                var b = new byte[stride * rows[i]];
                Marshal.Copy(ptrs[i], b, 0, (int)(stride * (rows[i] - 1) + rowBytes[i]));
                f.Planes[i] = b;
                f.Strides[i] = (int)stride;
            }
            return f;
        }

        public override string ToString()
        {
            return string.Format("video {0}/{1}: {2} {3}x{4} {5}, rtp {6}{7}", PeerId, TrackId, Codec, Width, Height, Format,
                RtpTimestamp, Keyframe ? ", keyframe" : "");
        }
    }

    public sealed partial class Transport
    {
        /// <summary>
        /// Creates an outgoing video track sending to target, encoding as config says (null: the
        /// defaults). Each peer gets the codec negotiated with it (TransportConfig.VideoCodec when
        /// the peer accepts it). RmwException InvalidArgument for a bad setting or when
        /// EnableVideo is false, NotFound for an unknown peer or session. A peer carries one
        /// outgoing video track at a time: a second track aimed at it skips it
        /// (VideoTrackStats.PeersBusy).
        /// </summary>
        public VideoTrack AddVideoTrack(TrackTarget target, VideoTrackConfig config = null)
        {
            if (target == null) throw new ArgumentNullException("target");
            var cfg = config == null ? new VideoTrackConfig() : config.Clone();
            var n = cfg.ToNative();
            ulong track;
            Check(Native.rmw_video_track_new(Live(), ref n, (int)target.Kind, Utf8.ToNative(target.Id), out track));
            return new VideoTrack(this, track, cfg);
        }

        /// <summary>
        /// Waits up to timeoutMs (0: no wait; negative: until a frame comes or Dispose) for the
        /// next decoded video frame of any remote track, copied into managed memory. Returns
        /// false on timeout; throws ObjectDisposedException once disposed (also when Dispose
        /// ends the wait). The library keeps only the newest VideoQueueCapacity frames (default
        /// 8): poll continuously (e.g. from a thread of its own), or the oldest frames are
        /// dropped ("video_frames_dropped" in StatsJson).
        /// </summary>
        public bool TryPollVideo(int timeoutMs, out VideoFrame frame)
        {
            frame = null;
            ulong id = Live();
            var n = new NativeVideoFrame();
            int st = Native.rmw_transport_poll_video(id, ref n, timeoutMs);
            if (st == (int)Status.Timeout) { GC.KeepAlive(this); return false; }
            if (st != 0) CheckLive(st);
            try { frame = VideoFrame.Copy(ref n); }
            finally { Native.rmw_video_frame_release(ref n); }
            GC.KeepAlive(this);
            return true;
        }

        /// <summary>TryPollVideo returning the frame, or null on timeout.</summary>
        public VideoFrame PollVideo(int timeoutMs)
        {
            VideoFrame f;
            return TryPollVideo(timeoutMs, out f) ? f : null;
        }
    }
}
