// Status codes, exceptions, events and library-wide functions.
using System;
using System.Runtime.InteropServices;

namespace RemoteMedia.WebRtc
{
    /// <summary>rmw_status_t.</summary>
    public enum Status
    {
        Ok = 0,
        InvalidArgument = -1,
        InvalidHandle = -2,
        BufferTooSmall = -3,
        Timeout = -4,
        NotFound = -5,
        AlreadyExists = -6,
        MaxPeers = -7,
        NotConnected = -8,
        Signaling = -9,
        WebRtc = -10,
        Config = -11,
        Io = -12,
        Closed = -13,
        WouldBlock = -14,
        Internal = -15,
        /// <summary>An audio track's send queue is full (the encoder is behind): the input was not taken. (Video tracks never refuse a frame: the newest wins.)</summary>
        QueueFull = -16,
        /// <summary>The codec (libopus, libvpx) refused the data or the settings.</summary>
        Codec = -17,
    }

    /// <summary>rmw_event_kind_t.</summary>
    public enum EventKind
    {
        None = 0,
        SignalingConnected = 1,
        SignalingDisconnected = 2,
        PeerDiscovered = 3,
        PeerLeft = 4,
        PeerOffer = 5,
        PeerStateChanged = 6,
        DataChannelOpen = 7,
        DataChannelClose = 8,
        DataChannelMessage = 9,
        DataChannelBufferedAmountLow = 10,
        Error = 11,
        /// <summary>A remote track's first packet arrived: TrackId, MediaKind, Codec, ClockRate, Channels.</summary>
        TrackAdded = 12,
        /// <summary>A remote track ended.</summary>
        TrackRemoved = 13,
    }

    /// <summary>rmw_media_kind_t.</summary>
    public enum MediaKind
    {
        None = 0,
        Audio = 1,
        Video = 2,
    }

    /// <summary>rmw_peer_state_t.</summary>
    public enum PeerState
    {
        New = 0,
        Connecting = 1,
        Connected = 2,
        Disconnected = 3,
        Failed = 4,
        Closed = 5,
    }

    /// <summary>A failed library call: Status and the library's error text (rmw_last_error_message).</summary>
    public class RmwException : Exception
    {
        public Status Status { get; private set; }
        /// <summary>rmw_status_string of the status, e.g. "RMW_ERR_NOT_FOUND".</summary>
        public string StatusName { get; private set; }
        /// <summary>The library's own text (may be empty).</summary>
        public string LibraryMessage { get; private set; }

        public RmwException(Status status, string libraryMessage)
            : base(Format(status, libraryMessage))
        {
            Status = status;
            StatusName = Rmw.StatusString((int)status);
            LibraryMessage = libraryMessage ?? string.Empty;
        }

        static string Format(Status status, string msg)
        {
            string name = Rmw.StatusString((int)status);
            return string.IsNullOrEmpty(msg) ? name : name + ": " + msg;
        }

        /// <summary>Throws for a non-zero status. Must run on the thread that made the call.</summary>
        internal static void Check(int status)
        {
            if (status == 0) return;
            string msg = Utf8.FromNative(Native.rmw_last_error_message());
            if (status == (int)Status.QueueFull) throw new QueueFullException(msg);
            throw new RmwException((Status)status, msg);
        }
    }

    /// <summary>
    /// RmwException with Status.QueueFull: an AudioTrack's queue holds more than its
    /// MaxQueueMs, nothing of this Send was taken. Send in real time, or use TrySend.
    /// </summary>
    public sealed class QueueFullException : RmwException
    {
        public QueueFullException(string libraryMessage) : base(Status.QueueFull, libraryMessage) { }
    }

    /// <summary>
    /// One event, copied into managed memory (the native event has already been released).
    /// Fields that do not apply to the kind are 0 / null.
    /// </summary>
    public sealed class RmwEvent : EventArgs
    {
        public EventKind Kind { get; private set; }
        /// <summary>Raw id of the transport the event belongs to.</summary>
        public ulong TransportId { get; private set; }
        public string PeerId { get; private set; }
        public PeerState PeerState { get; private set; }
        /// <summary>Raw id of the data channel (use Transport.GetDataChannel to wrap it), or 0.</summary>
        public ulong Channel { get; private set; }
        public string Label { get; private set; }
        /// <summary>Message payload (DataChannelMessage), or null.</summary>
        public byte[] Data { get; private set; }
        public bool Binary { get; private set; }
        /// <summary>Human-readable text (errors, disconnect reasons), or null.</summary>
        public string Message { get; private set; }
        /// <summary>TrackAdded / TrackRemoved: the remote track's id (as in AudioFrame.TrackId / VideoFrame.TrackId), or null.</summary>
        public string TrackId { get; private set; }
        public MediaKind MediaKind { get; private set; }
        /// <summary>TrackAdded: lower-case codec name ("opus", "vp8" or "vp9"), or null.</summary>
        public string Codec { get; private set; }
        /// <summary>TrackAdded: RTP clock rate (48000 for Opus, 90000 for video).</summary>
        public uint ClockRate { get; private set; }
        /// <summary>TrackAdded: channels of the codec (Opus: 2; video: 0).</summary>
        public uint Channels { get; private set; }

        /// <summary>The payload decoded as UTF-8 (text messages), or null.</summary>
        public string Text
        {
            get { return Data == null ? null : System.Text.Encoding.UTF8.GetString(Data); }
        }

        internal static RmwEvent Copy(ref NativeEvent n)
        {
            var e = new RmwEvent();
            e.Kind = (EventKind)n.Kind;
            e.TransportId = n.Transport;
            e.PeerId = Utf8.FromNative(n.PeerId);
            e.PeerState = (PeerState)n.PeerState;
            e.Channel = n.Channel;
            e.Label = Utf8.FromNative(n.Label);
            e.Binary = n.Binary != 0;
            ulong len = n.Len.ToUInt64();
            if (n.Data != IntPtr.Zero || len > 0)
            {
                if (len > int.MaxValue) throw new RmwException(Status.Internal, "event payload too large");
                e.Data = new byte[(int)len];
                if (len > 0) Marshal.Copy(n.Data, e.Data, 0, (int)len);
            }
            e.Message = Utf8.FromNative(n.Message);
            e.TrackId = Utf8.FromNative(n.TrackId);
            e.MediaKind = (MediaKind)n.MediaKind;
            e.Codec = Utf8.FromNative(n.Codec);
            e.ClockRate = n.ClockRate;
            e.Channels = n.Channels;
            return e;
        }

        public override string ToString()
        {
            var sb = new System.Text.StringBuilder(Kind.ToString());
            if (PeerId != null) sb.Append(" peer=").Append(PeerId);
            if (Kind == EventKind.PeerStateChanged) sb.Append(" state=").Append(PeerState);
            if (Channel != 0) sb.Append(" channel=").Append(Channel);
            if (Label != null) sb.Append(" label=").Append(Label);
            if (Data != null) sb.Append(Binary ? " binary=" : " text=").Append(Binary ? Data.Length + " bytes" : Text);
            if (TrackId != null) sb.Append(" track=").Append(TrackId).Append(" kind=").Append(MediaKind);
            if (Codec != null) sb.Append(" codec=").Append(Codec).Append('/').Append(ClockRate).Append('/').Append(Channels);
            if (Message != null) sb.Append(" message=").Append(Message);
            return sb.ToString();
        }
    }

    /// <summary>Marks a static method called from native code (IL2CPP/Unity looks for this name).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { }
    }

    /// <summary>Library-wide functions.</summary>
    public static class Rmw
    {
        public const uint AbiVersion = Native.AbiVersion;
        public const int MaxMessageSize = Native.MaxMessageSize;
        /// <summary>RTP clock of video (Hz): the clock of VideoFrame.RtpTimestamp.</summary>
        public const int VideoClockRate = 90000;
        public const int LogError = 1, LogWarn = 2, LogInfo = 3, LogDebug = 4, LogTrace = 5;

        /// <summary>Library version, e.g. "0.1.0".</summary>
        public static string Version { get { return Utf8.FromNative(Native.rmw_version()); } }

        /// <summary>ABI version of the loaded library (compare with AbiVersion).</summary>
        public static uint LibraryAbiVersion { get { return Native.rmw_abi_version(); } }

        /// <summary>Microseconds of CLOCK_MONOTONIC: the clock of AudioFrame.ArrivalUs and VideoFrame.ArrivalUs.</summary>
        public static ulong ClockUs { get { return Native.rmw_clock_us(); } }

        /// <summary>Name of a status code, e.g. "RMW_ERR_TIMEOUT".</summary>
        public static string StatusString(int status)
        {
            try { return Utf8.FromNative(Native.rmw_status_string(status)); }
            catch (DllNotFoundException) { return "RMW_STATUS_" + status; }
            catch (EntryPointNotFoundException) { return "RMW_STATUS_" + status; }
        }

        static readonly object logLock = new object();
        static Action<int, string, string> logHandler;
        static readonly NativeLogCallback logThunk = OnLog;   // kept alive for the process lifetime

        /// <summary>
        /// Routes the library's log records (level, target, message) to handler, up to maxLevel
        /// (LogError..LogTrace); null turns logging off. The handler runs on library threads:
        /// keep it short and call no blocking library function from it.
        /// </summary>
        public static void SetLogHandler(Action<int, string, string> handler, int maxLevel)
        {
            lock (logLock)
            {
                logHandler = handler;
                RmwException.Check(Native.rmw_set_log_callback(handler == null ? null : logThunk, IntPtr.Zero, maxLevel));
            }
        }

        [MonoPInvokeCallback(typeof(NativeLogCallback))]
        static void OnLog(int level, IntPtr target, IntPtr message, IntPtr userData)
        {
            try
            {
                var h = logHandler;
                if (h != null) h(level, Utf8.FromNative(target), Utf8.FromNative(message));
            }
            catch { /* never let an exception cross into native code */ }
        }
    }
}
