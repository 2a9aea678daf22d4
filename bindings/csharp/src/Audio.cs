// Audio: outgoing Opus tracks fed with PCM (AudioTrack), and decoded frames of remote tracks
// (Transport.TryPollAudio / PollAudio).
using System;
using System.Runtime.InteropServices;

namespace RemoteMedia.WebRtc
{
    /// <summary>RMW_TARGET_*: whom an outgoing track sends to.</summary>
    public enum TargetKind
    {
        None = 0,
        Peer = 1,
        Session = 2,
        All = 3,
    }

    /// <summary>Whom an AudioTrack or VideoTrack sends to: TrackTarget.Peer("bob"), .Session("room"), .All or .None.</summary>
    public sealed class TrackTarget
    {
        public TargetKind Kind { get; private set; }
        /// <summary>Peer id (Peer) or session id (Session); null otherwise.</summary>
        public string Id { get; private set; }

        public TrackTarget(TargetKind kind, string id) { Kind = kind; Id = id; }

        /// <summary>Nobody: the track encodes what it is given but sends nothing.</summary>
        public static readonly TrackTarget None = new TrackTarget(TargetKind.None, null);
        /// <summary>Every peer of the transport, later ones included.</summary>
        public static readonly TrackTarget All = new TrackTarget(TargetKind.All, null);
        /// <summary>One peer.</summary>
        public static TrackTarget Peer(string peerId) { return new TrackTarget(TargetKind.Peer, peerId); }
        /// <summary>Every peer of a session, as its membership changes.</summary>
        public static TrackTarget Session(string sessionId) { return new TrackTarget(TargetKind.Session, sessionId); }

        public override string ToString() { return Id == null ? Kind.ToString() : Kind + ":" + Id; }
    }

    /// <summary>RMW_OPUS_*: the Opus application mode.</summary>
    public enum OpusApplication
    {
        Voip = 0,
        Audio = 1,
        LowDelay = 2,
    }

    /// <summary>
    /// How an outgoing track encodes (rmw_audio_track_config_t). A new instance holds the
    /// library's defaults (rmw_audio_track_config_default): 48 kHz mono, 20 ms frames,
    /// 32 kbit/s, complexity 9, FEC for 10 % loss, no DTX, VoIP mode, 200 ms of queue.
    /// </summary>
    public sealed class AudioTrackConfig
    {
        /// <summary>Hz of the PCM you send: 8000, 16000, 24000, 32000, 44100, 48000 or 96000.</summary>
        public int SampleRate;
        /// <summary>1 or 2 (interleaved).</summary>
        public int Channels;
        /// <summary>Opus frame: 10, 20, 40 or 60 ms.</summary>
        public int FrameMs;
        /// <summary>Bits per second, 6000..510000.</summary>
        public int Bitrate;
        /// <summary>0 (fastest) .. 10 (best).</summary>
        public int Complexity;
        /// <summary>In-band forward error correction.</summary>
        public bool Fec;
        /// <summary>Loss rate (0..100 %) FEC is planned for.</summary>
        public int ExpectedLossPercent;
        /// <summary>Discontinuous transmission: silence is not sent.</summary>
        public bool Dtx;
        public OpusApplication Application;
        /// <summary>Most PCM (ms) queued ahead of the encoder before Send throws QueueFullException.</summary>
        public int MaxQueueMs;

        public AudioTrackConfig()
        {
            var d = Native.rmw_audio_track_config_default();
            SampleRate = (int)d.SampleRate;
            Channels = (int)d.Channels;
            FrameMs = (int)d.FrameMs;
            Bitrate = (int)d.Bitrate;
            Complexity = (int)d.Complexity;
            Fec = d.Fec != 0;
            ExpectedLossPercent = (int)d.ExpectedLossPercent;
            Dtx = d.Dtx != 0;
            Application = (OpusApplication)d.Application;
            MaxQueueMs = (int)d.MaxQueueMs;
        }

        public AudioTrackConfig Clone() { return (AudioTrackConfig)MemberwiseClone(); }

        internal NativeAudioTrackConfig ToNative()
        {
            return new NativeAudioTrackConfig
            {
                SampleRate = U32(SampleRate, "SampleRate"),
                Channels = U32(Channels, "Channels"),
                FrameMs = U32(FrameMs, "FrameMs"),
                Bitrate = U32(Bitrate, "Bitrate"),
                Complexity = U32(Complexity, "Complexity"),
                Fec = (byte)(Fec ? 1 : 0),
                ExpectedLossPercent = U32(ExpectedLossPercent, "ExpectedLossPercent"),
                Dtx = (byte)(Dtx ? 1 : 0),
                Application = (int)Application,
                MaxQueueMs = U32(MaxQueueMs, "MaxQueueMs"),
            };
        }

        static uint U32(int v, string name)
        {
            if (v < 0) throw new RmwException(Status.InvalidArgument, name + " " + v + " is out of range");
            return (uint)v;
        }

        public override string ToString()
        {
            return string.Format("{0} Hz x {1}, {2} ms, {3} bit/s, complexity {4}, fec {5} ({6} %), dtx {7}, {8}, queue {9} ms",
                SampleRate, Channels, FrameMs, Bitrate, Complexity, Fec, ExpectedLossPercent, Dtx, Application, MaxQueueMs);
        }
    }

    /// <summary>Counters of an outgoing track (rmw_audio_track_stats_json).</summary>
    public sealed class AudioTrackStats
    {
        /// <summary>The track's id, as AudioTrack.Id (and in Transport.StatsJson).</summary>
        public long Track;
        /// <summary>Samples per channel taken by Send.</summary>
        public long SamplesIn;
        /// <summary>Sends refused because the queue was full.</summary>
        public long QueueFull;
        public long FramesEncoded;
        /// <summary>Frames not sent because DTX found them silent.</summary>
        public long FramesDtx;
        /// <summary>RTP packets sent (one per frame and peer).</summary>
        public long PacketsSent;
        public long BytesSent;
        /// <summary>Peers the last frame went to.</summary>
        public int Peers;
        /// <summary>Peers of the target already carrying another track of this transport.</summary>
        public int PeersBusy;

        internal static AudioTrackStats Parse(string json)
        {
            var d = Json.Integers(json);
            Func<string, long> get = k => { long v; return d.TryGetValue(k, out v) ? v : 0; };
            return new AudioTrackStats
            {
                Track = get("track"),
                SamplesIn = get("samples_in"),
                QueueFull = get("queue_full"),
                FramesEncoded = get("frames_encoded"),
                FramesDtx = get("frames_dtx"),
                PacketsSent = get("packets_sent"),
                BytesSent = get("bytes_sent"),
                Peers = (int)get("peers"),
                PeersBusy = (int)get("peers_busy"),
            };
        }

        public override string ToString()
        {
            return string.Format("samples_in {0}, queue_full {1}, frames_encoded {2}, frames_dtx {3}, packets_sent {4}, bytes_sent {5}, peers {6}, peers_busy {7}",
                SamplesIn, QueueFull, FramesEncoded, FramesDtx, PacketsSent, BytesSent, Peers, PeersBusy);
        }
    }

    /// <summary>
    /// An outgoing Opus track of a transport (Transport.AddAudioTrack). Send interleaved PCM at
    /// the configured rate and channels, paced in real time; Send returns without waiting for
    /// the encoder and is safe from any thread (e.g. an audio callback). Dispose it when done
    /// (idempotent; a finalizer frees a forgotten one). Disposing the transport frees its
    /// tracks; calls afterwards throw ObjectDisposedException.
    /// </summary>
    public sealed class AudioTrack : IDisposable
    {
        readonly Transport transport;   // keeps the transport (and its handle) alive
        readonly AudioTrackHandle handle;
        readonly AudioTrackConfig config;

        internal AudioTrack(Transport transport, ulong id, AudioTrackConfig config)
        {
            this.transport = transport;
            this.config = config;
            handle = new AudioTrackHandle(id);
        }

        /// <summary>The raw rmw_audio_track_t id (0 once disposed).</summary>
        public ulong Id { get { return handle.Id; } }
        public bool IsDisposed { get { return handle.IsReleased; } }
        public Transport Transport { get { return transport; } }
        /// <summary>A copy of the configuration the track was created with.</summary>
        public AudioTrackConfig Config { get { return config.Clone(); } }
        public int Channels { get { return config.Channels; } }
        public int SampleRate { get { return config.SampleRate; } }

        ulong Live()
        {
            ulong id = handle.Id;
            if (id == 0) throw new ObjectDisposedException("AudioTrack");
            if (transport.IsDisposed) throw new ObjectDisposedException("Transport");
            return id;
        }

        void Check(int status)
        {
            GC.KeepAlive(this);
            if (status == (int)Status.InvalidHandle)
            {
                if (handle.IsReleased) throw new ObjectDisposedException("AudioTrack");
                if (transport.IsDisposed) throw new ObjectDisposedException("Transport");
            }
            RmwException.Check(status);
        }

        UIntPtr SamplesPerChannel(int samples)
        {
            if (samples == 0) throw new RmwException(Status.InvalidArgument, "no samples");
            if (samples % config.Channels != 0)
                throw new RmwException(Status.InvalidArgument, samples + " samples is not a whole number of frames of " +
                    config.Channels + " channels");
            return new UIntPtr((uint)(samples / config.Channels));
        }

        static void Range(Array pcm, int offset, int count)
        {
            if (pcm == null) throw new ArgumentNullException("pcm");
            if (offset < 0 || count < 0 || offset > pcm.Length - count) throw new ArgumentOutOfRangeException("count");
        }

        int RawSend(float[] pcm, int offset, int count)
        {
            Range(pcm, offset, count);
            UIntPtr n = SamplesPerChannel(count);
            ulong id = Live();
            if (offset == 0) return Native.rmw_audio_track_send_f32(id, pcm, n);
            var pin = GCHandle.Alloc(pcm, GCHandleType.Pinned);
            try { return Native.rmw_audio_track_send_f32(id, new IntPtr(pin.AddrOfPinnedObject().ToInt64() + 4L * offset), n); }
            finally { pin.Free(); }
        }

        int RawSend(short[] pcm, int offset, int count)
        {
            Range(pcm, offset, count);
            UIntPtr n = SamplesPerChannel(count);
            ulong id = Live();
            if (offset == 0) return Native.rmw_audio_track_send_s16(id, pcm, n);
            var pin = GCHandle.Alloc(pcm, GCHandleType.Pinned);
            try { return Native.rmw_audio_track_send_s16(id, new IntPtr(pin.AddrOfPinnedObject().ToInt64() + 2L * offset), n); }
            finally { pin.Free(); }
        }

        /// <summary>
        /// Queues interleaved float PCM in [-1, 1] (pcm.Length a multiple of Channels; copied).
        /// Throws QueueFullException when more than MaxQueueMs is waiting (nothing was taken),
        /// RmwException(InvalidArgument) for an empty or partial frame.
        /// </summary>
        public void Send(float[] pcm) { Check(RawSend(pcm, 0, pcm == null ? 0 : pcm.Length)); }

        /// <summary>Queues interleaved 16-bit PCM (see Send(float[])).</summary>
        public void Send(short[] pcm) { Check(RawSend(pcm, 0, pcm == null ? 0 : pcm.Length)); }

        /// <summary>Queues pcm[offset..offset+count) (interleaved; count a multiple of Channels).</summary>
        public void Send(float[] pcm, int offset, int count) { Check(RawSend(pcm, offset, count)); }

        /// <summary>Queues pcm[offset..offset+count) of 16-bit PCM.</summary>
        public void Send(short[] pcm, int offset, int count) { Check(RawSend(pcm, offset, count)); }

        /// <summary>Send that returns false instead of throwing when the queue is full.</summary>
        public bool TrySend(float[] pcm)
        {
            int st = RawSend(pcm, 0, pcm == null ? 0 : pcm.Length);
            if (st == (int)Status.QueueFull) { GC.KeepAlive(this); return false; }
            Check(st);
            return true;
        }

        /// <summary>Send that returns false instead of throwing when the queue is full.</summary>
        public bool TrySend(short[] pcm)
        {
            int st = RawSend(pcm, 0, pcm == null ? 0 : pcm.Length);
            if (st == (int)Status.QueueFull) { GC.KeepAlive(this); return false; }
            Check(st);
            return true;
        }

        /// <summary>Re-aims the track (RmwException NotFound for an unknown peer or session).</summary>
        public void SetTarget(TrackTarget target)
        {
            if (target == null) throw new ArgumentNullException("target");
            Check(Native.rmw_audio_track_set_target(Live(), (int)target.Kind, Utf8.ToNative(target.Id)));
        }

        /// <summary>The counters as the library's JSON.</summary>
        public string StatsJson()
        {
            ulong id = Live();
            string s;
            try { s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_audio_track_stats_json(id, b, ref l); }); }
            catch (RmwException e)
            {
                if (e.Status == Status.InvalidHandle && handle.IsReleased) throw new ObjectDisposedException("AudioTrack");
                if (e.Status == Status.InvalidHandle && transport.IsDisposed) throw new ObjectDisposedException("Transport");
                throw;
            }
            GC.KeepAlive(this);
            return s;
        }

        /// <summary>The counters, parsed.</summary>
        public AudioTrackStats Stats { get { return AudioTrackStats.Parse(StatsJson()); } }

        /// <summary>
        /// Stops the track (PCM already queued is still encoded and sent) and frees its id,
        /// exactly once. Idempotent; also fine after the transport was disposed.
        /// </summary>
        public void Dispose()
        {
            int st = handle.Release();
            GC.SuppressFinalize(handle);
            if (st == (int)Status.InvalidHandle && transport.IsDisposed) return;   // freed with its transport
            RmwException.Check(st);
        }
    }

    /// <summary>rmw_sample_format_t: format of received audio (TransportConfig.AudioOutputFormat).</summary>
    public enum SampleFormat
    {
        /// <summary>Interleaved float in [-1, 1] ("f32").</summary>
        F32 = 0,
        /// <summary>Interleaved 16-bit ("s16").</summary>
        S16 = 1,
    }

    /// <summary>
    /// A block of decoded audio from one remote track, copied into managed memory (the native
    /// frame has already been released). F32 or S16 holds the samples, as Format says.
    /// </summary>
    public sealed class AudioFrame
    {
        public ulong TransportId { get; private set; }
        /// <summary>The sending peer.</summary>
        public string PeerId { get; private set; }
        /// <summary>Its track (as in the TrackAdded event).</summary>
        public string TrackId { get; private set; }
        public int SampleRate { get; private set; }
        public int Channels { get; private set; }
        public SampleFormat Format { get; private set; }
        /// <summary>Format F32: SamplesPerChannel * Channels interleaved samples; otherwise null.</summary>
        public float[] F32 { get; private set; }
        /// <summary>Format S16: SamplesPerChannel * Channels interleaved samples; otherwise null.</summary>
        public short[] S16 { get; private set; }
        public int SamplesPerChannel { get; private set; }
        /// <summary>RTP timestamp (48 kHz clock) of the first sample.</summary>
        public uint RtpTimestamp { get; private set; }
        /// <summary>Arrival of the packet, microseconds of CLOCK_MONOTONIC (Rmw.ClockUs).</summary>
        public ulong ArrivalUs { get; private set; }
        /// <summary>RFC 6464 level: 0 is full scale, 127 silence (-dBov).</summary>
        public byte Level { get; private set; }
        /// <summary>The block was lost and concealed, or rebuilt from FEC.</summary>
        public bool Concealed { get; private set; }

        public TimeSpan Duration
        {
            get { return SampleRate <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(SamplesPerChannel * TimeSpan.TicksPerSecond / SampleRate); }
        }

        /// <summary>The samples as float in [-1, 1] whatever the format (F32 itself, or S16 converted).</summary>
        public float[] ToFloat()
        {
            if (F32 != null) return F32;
            var f = new float[S16 == null ? 0 : S16.Length];
            for (int i = 0; i < f.Length; i++) f[i] = S16[i] / 32768f;
            return f;
        }

        internal static AudioFrame Copy(ref NativeAudioFrame n)
        {
            var f = new AudioFrame();
            f.TransportId = n.Transport;
            f.PeerId = Utf8.FromNative(n.PeerId);
            f.TrackId = Utf8.FromNative(n.TrackId);
            f.SampleRate = (int)n.SampleRate;
            f.Channels = (int)n.Channels;
            f.Format = (SampleFormat)n.Format;
            ulong spc = n.SamplesPerChannel.ToUInt64();
            ulong count = spc * n.Channels;
            if (count > int.MaxValue) throw new RmwException(Status.Internal, "audio frame too large");
            f.SamplesPerChannel = (int)spc;
            int c = (int)count;
            bool data = c > 0 && n.Data != IntPtr.Zero;
            if (f.Format == SampleFormat.F32)
            {
                f.F32 = new float[c];
                if (data) Marshal.Copy(n.Data, f.F32, 0, c);
            }
            else
            {
                f.S16 = new short[c];
                if (data) Marshal.Copy(n.Data, f.S16, 0, c);
            }
            f.RtpTimestamp = n.RtpTimestamp;
            f.ArrivalUs = n.ArrivalUs;
            f.Level = n.Level;
            f.Concealed = n.Concealed != 0;
            return f;
        }

        public override string ToString()
        {
            return string.Format("audio {0}/{1}: {2} x {3} Hz x {4} {5}, rtp {6}, level {7}{8}", PeerId, TrackId,
                SamplesPerChannel, SampleRate, Channels, Format, RtpTimestamp, Level, Concealed ? ", concealed" : "");
        }
    }

    public sealed partial class Transport
    {
        /// <summary>
        /// Creates an outgoing Opus track sending to target, encoding as config says (null:
        /// the defaults). RmwException InvalidArgument for a bad setting or when EnableAudio is
        /// false, NotFound for an unknown peer or session. A peer carries one outgoing audio
        /// track at a time: a second track aimed at it skips it (AudioTrackStats.PeersBusy).
        /// </summary>
        public AudioTrack AddAudioTrack(TrackTarget target, AudioTrackConfig config = null)
        {
            if (target == null) throw new ArgumentNullException("target");
            var cfg = config == null ? new AudioTrackConfig() : config.Clone();
            var n = cfg.ToNative();
            ulong track;
            Check(Native.rmw_audio_track_new(Live(), ref n, (int)target.Kind, Utf8.ToNative(target.Id), out track));
            return new AudioTrack(this, track, cfg);
        }

        /// <summary>
        /// Waits up to timeoutMs (0: no wait; negative: until a frame comes or Dispose) for the
        /// next decoded audio frame of any remote track, copied into managed memory. Returns
        /// false on timeout; throws ObjectDisposedException once disposed (also when Dispose
        /// ends the wait). When the application does not keep up, the library drops the oldest
        /// frames ("audio_frames_dropped" in StatsJson).
        /// </summary>
        public bool TryPollAudio(int timeoutMs, out AudioFrame frame)
        {
            frame = null;
            ulong id = Live();
            var n = new NativeAudioFrame();
            int st = Native.rmw_transport_poll_audio(id, ref n, timeoutMs);
            if (st == (int)Status.Timeout) { GC.KeepAlive(this); return false; }
            if (st != 0) CheckLive(st);
            try { frame = AudioFrame.Copy(ref n); }
            finally { Native.rmw_audio_frame_release(ref n); }
            GC.KeepAlive(this);
            return true;
        }

        /// <summary>TryPollAudio returning the frame, or null on timeout.</summary>
        public AudioFrame PollAudio(int timeoutMs)
        {
            AudioFrame f;
            return TryPollAudio(timeoutMs, out f) ? f : null;
        }
    }
}
