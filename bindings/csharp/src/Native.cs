// P/Invoke declarations mirroring include/remotemedia_webrtc.h (ABI version 1).
//
// Conventions used here:
//   - const char* parameters are passed as NUL-terminated UTF-8 byte[] (see Utf8.ToNative);
//     a null byte[] is passed as NULL.
//   - handles (uint64_t ids) are ulong; size_t is UIntPtr; C bool is byte (0/1).
//   - every fallible function returns int (rmw_status_t); RmwException.Check turns it into
//     an exception with the thread's rmw_last_error_message().
using System;
using System.Runtime.InteropServices;

// The tests check the layout of the native mirrors below against the C header.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Tests")]

namespace RemoteMedia.WebRtc
{
    /// <summary>Exact mirror of rmw_event_t (x86_64 / aarch64: 120 bytes; 32-bit: 80 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeEvent
    {
        public int Kind;          // rmw_event_kind_t
        public ulong Transport;   // rmw_transport_t
        public IntPtr PeerId;     // const char*
        public int PeerState;     // rmw_peer_state_t
        public ulong Channel;     // rmw_data_channel_t
        public IntPtr Label;      // const char*
        public IntPtr Data;       // const uint8_t*
        public UIntPtr Len;       // size_t
        public byte Binary;       // bool
        public IntPtr Message;    // const char*
        public IntPtr TrackId;    // const char* (track events)
        public int MediaKind;     // rmw_media_kind_t
        public IntPtr Codec;      // const char* (track events)
        public uint ClockRate;    // uint32_t
        public uint Channels;     // uint32_t
        public IntPtr Internal;   // void*
    }

    /// <summary>Exact mirror of rmw_audio_track_config_t (40 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeAudioTrackConfig
    {
        public uint SampleRate;
        public uint Channels;
        public uint FrameMs;
        public uint Bitrate;
        public uint Complexity;
        public byte Fec;                  // bool
        public uint ExpectedLossPercent;
        public byte Dtx;                  // bool
        public int Application;           // RMW_OPUS_*
        public uint MaxQueueMs;
    }

    /// <summary>Exact mirror of rmw_audio_frame_t (x86_64 / aarch64: 88 bytes; 32-bit: 64 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeAudioFrame
    {
        public ulong Transport;           // rmw_transport_t
        public IntPtr PeerId;             // const char*
        public IntPtr TrackId;            // const char*
        public uint SampleRate;
        public uint Channels;
        public int Format;                // rmw_sample_format_t
        public IntPtr Data;               // const void*
        public UIntPtr SamplesPerChannel; // size_t
        public uint RtpTimestamp;
        public ulong ArrivalUs;
        public byte Level;
        public byte Concealed;            // bool
        public IntPtr Internal;           // void*
    }

    /// <summary>Exact mirror of rmw_video_track_config_t (24 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeVideoTrackConfig
    {
        public uint BitrateKbps;
        public uint MinBitrateKbps;
        public uint Fps;
        public uint KeyframeInterval;
        public int Speed;                 // -16..16 or RMW_VIDEO_SPEED_DEFAULT
        public uint Threads;
    }

    /// <summary>Exact mirror of rmw_raw_video_frame_t (x86_64 / aarch64: 80 bytes; 32-bit: 48 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeRawVideoFrame
    {
        public int Format;                // RMW_PIXEL_*
        public uint Width;
        public uint Height;
        public IntPtr Plane0, Plane1, Plane2;        // const uint8_t *planes[3]
        public uint Stride0, Stride1, Stride2;       // uint32_t strides[3]
        public UIntPtr Size0, Size1, Size2;          // size_t sizes[3]
    }

    /// <summary>Exact mirror of rmw_video_frame_t (x86_64 / aarch64: 112 bytes; 32-bit: 80 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeVideoFrame
    {
        public ulong Transport;           // rmw_transport_t
        public IntPtr PeerId;             // const char*
        public IntPtr TrackId;            // const char*
        public IntPtr Codec;              // const char*: "vp8" / "vp9"
        public uint Width;
        public uint Height;
        public int Format;                // rmw_video_format_t
        public IntPtr Plane0, Plane1, Plane2;        // const uint8_t *planes[3]
        public uint Stride0, Stride1, Stride2;       // uint32_t strides[3]
        public uint RtpTimestamp;
        public ulong ArrivalUs;
        public byte Keyframe;             // bool
        public IntPtr Internal;           // void*
    }

    /// <summary>Mirror of rmw_data_channel_options_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeDataChannelOptions
    {
        public byte Ordered;
        public int MaxRetransmits;
        public int MaxPacketLifetimeMs;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void NativeLogCallback(int level, IntPtr target, IntPtr message, IntPtr userData);

    internal static class Native
    {
        public const string Lib = "remotemedia_webrtc";
        public const uint AbiVersion = 1;
        public const int MaxMessageSize = 65536;

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] public static extern IntPtr rmw_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] public static extern uint rmw_abi_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] public static extern IntPtr rmw_last_error_message();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] public static extern IntPtr rmw_status_string(int status);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_set_log_callback(NativeLogCallback callback, IntPtr userData, int maxLevel);

        // data channels
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern NativeDataChannelOptions rmw_data_channel_options_default();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_create(ulong transport, byte[] peerId, byte[] label,
            ref NativeDataChannelOptions options, out ulong channel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_send(ulong channel, byte[] data, UIntPtr len, byte binary);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_buffered_amount(ulong channel, out ulong amount);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_set_buffered_amount_low_threshold(ulong channel, ulong threshold);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_label(ulong channel, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_data_channel_close(ulong channel);

        // audio
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern NativeAudioTrackConfig rmw_audio_track_config_default();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_new(ulong transport, ref NativeAudioTrackConfig config, int targetKind,
            byte[] targetId, out ulong track);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_send_f32(ulong track, float[] pcm, UIntPtr samplesPerChannel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_send_f32(ulong track, IntPtr pcm, UIntPtr samplesPerChannel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_send_s16(ulong track, short[] pcm, UIntPtr samplesPerChannel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_send_s16(ulong track, IntPtr pcm, UIntPtr samplesPerChannel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_set_target(ulong track, int targetKind, byte[] targetId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_stats_json(ulong track, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_audio_track_free(ulong track);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_poll_audio(ulong transport, ref NativeAudioFrame frame, int timeoutMs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern void rmw_audio_frame_release(ref NativeAudioFrame frame);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern ulong rmw_clock_us();

        // video
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern NativeVideoTrackConfig rmw_video_track_config_default();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_new(ulong transport, ref NativeVideoTrackConfig config, int targetKind,
            byte[] targetId, out ulong track);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_send(ulong track, ref NativeRawVideoFrame frame);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_set_target(ulong track, int targetKind, byte[] targetId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_set_bitrate(ulong track, uint kbps);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_request_keyframe(ulong track);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_stats_json(ulong track, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_video_track_free(ulong track);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_poll_video(ulong transport, ref NativeVideoFrame frame, int timeoutMs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern void rmw_video_frame_release(ref NativeVideoFrame frame);

        // events
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_poll_event(ulong transport, ref NativeEvent ev, int timeoutMs);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern void rmw_event_release(ref NativeEvent ev);

        // signaling server
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_signaling_server_start(byte[] bindAddr, UIntPtr maxMessageBytes, out ulong server);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_signaling_server_port(ulong server, out ushort port);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_signaling_server_url(ulong server, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_signaling_server_stop(ulong server);

        // sessions
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_create(ulong transport, byte[] sessionId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_remove(ulong transport, byte[] sessionId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_add_peer(ulong transport, byte[] sessionId, byte[] peerId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_remove_peer(ulong transport, byte[] sessionId, byte[] peerId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_get(ulong transport, byte[] sessionId, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_list(ulong transport, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_session_send_data(ulong transport, byte[] sessionId, byte[] data, UIntPtr len,
            byte binary, out UIntPtr sentTo);

        // transports
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_new(byte[] configJson, out ulong transport);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_free(ulong transport);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_peer_id(ulong transport, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_connect_peer(ulong transport, byte[] peerId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_accept_peer(ulong transport, byte[] peerId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_disconnect_peer(ulong transport, byte[] peerId);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_peer_state(ulong transport, byte[] peerId, out int state);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_peer_count(ulong transport, byte connectedOnly, out UIntPtr count);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_list_peers(ulong transport, byte connectedOnly, byte[] buf, ref UIntPtr len);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_send_data(ulong transport, byte[] peerId, byte[] data, UIntPtr len,
            byte binary, out UIntPtr sentTo);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        public static extern int rmw_transport_stats_json(ulong transport, byte[] buf, ref UIntPtr len);
    }

    internal delegate int SizeQuery(byte[] buf, ref UIntPtr len);

    internal static class Utf8
    {
        static readonly System.Text.UTF8Encoding Strict = new System.Text.UTF8Encoding(false, false);

        /// <summary>NUL-terminated UTF-8 copy of s; null for null.</summary>
        public static byte[] ToNative(string s)
        {
            if (s == null) return null;
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("string contains a NUL character", "s");
            int n = Strict.GetByteCount(s);
            byte[] b = new byte[n + 1];
            Strict.GetBytes(s, 0, s.Length, b, 0);
            return b;
        }

        /// <summary>Decodes a NUL-terminated UTF-8 C string (null for NULL). Never uses PtrToStringAnsi.</summary>
        public static string FromNative(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            if (n == 0) return string.Empty;
            byte[] b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Strict.GetString(b);
        }

        /// <summary>Runs a size-query function until the buffer is large enough; returns the text.</summary>
        public static string Query(SizeQuery f)
        {
            int cap = 256;
            for (int attempt = 0; attempt < 8; attempt++)
            {
                byte[] buf = new byte[cap];
                UIntPtr len = new UIntPtr((uint)cap);
                int st = f(buf, ref len);
                if (st == (int)Status.BufferTooSmall)
                {
                    ulong need = len.ToUInt64();
                    if (need <= (ulong)cap || need > int.MaxValue) need = (ulong)cap * 2;
                    cap = (int)need;
                    continue;
                }
                RmwException.Check(st);
                int n = (int)Math.Min(len.ToUInt64(), (ulong)buf.Length);
                // len counts the NUL; stop at the first NUL anyway.
                int end = Array.IndexOf(buf, (byte)0, 0, n);
                if (end < 0) end = n;
                return Strict.GetString(buf, 0, end);
            }
            throw new RmwException(Status.Internal, "size query did not converge");
        }
    }
}
