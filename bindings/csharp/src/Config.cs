// Transport configuration, serialised to the library's JSON by hand (no external packages).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace RemoteMedia.WebRtc
{
    public sealed class TurnServer
    {
        public string Url, Username, Credential;
        public TurnServer() { }
        public TurnServer(string url, string username, string credential) { Url = url; Username = username; Credential = credential; }
    }

    /// <summary>
    /// Fields of rmw_transport_new's JSON (see docs/ARCHITECTURE.md). Null fields are left out
    /// and take the library's defaults.
    /// </summary>
    public sealed class TransportConfig
    {
        public string SignalingUrl;           // "ws://127.0.0.1:8080"
        public string PeerId;                 // random
        public string SignalingToken;         // for servers that require authentication (announce token)
        public string IcePolicy;              // "all" | "loopback" | "relay"
        public string[] StunServers;
        public TurnServer[] TurnServers;
        public int? MaxPeers;                 // 10
        public bool? AutoAnswer;              // true
        public bool? EnableDataChannel;       // true
        public int? EventQueueCapacity;       // 8192
        public int? WorkerThreads;            // 2
        public int? IceDisconnectedTimeoutMs; // 5000
        public int? IceFailedTimeoutMs;       // 25000
        public int? IceKeepaliveIntervalMs;   // 2000
        public int? ReconnectInitialMs;       // 100
        public int? ReconnectMaxMs;           // 5000
        public string AudioCodec;             // "opus"
        public string VideoCodec;             // preferred video codec: "vp8" (default) or "vp9"
        public bool? EnableAudio;             // true: every peer connection carries one two-way Opus track
        public int? AudioOutputSampleRate;    // 48000: received audio is decoded to this rate...
        public int? AudioOutputChannels;      // 2: ...this many interleaved channels...
        public string AudioOutputFormat;      // "f32": ...and format ("f32" or "s16")
        public int? AudioQueueCapacity;       // 256: decoded frames waiting for TryPollAudio
        public bool? EnableVideo;             // true: every peer connection carries one two-way video track (VP8/VP9)
        public string VideoOutputFormat;      // "i420": received video as I420 planes, or "rgba"
        public int? VideoQueueCapacity;       // 8: decoded frames waiting for TryPollVideo (the oldest is dropped)
        public int? VideoMaxDelayMs;          // 200: longest a missing packet is waited for (NACK) before its frame is dropped
        public int? SimulateLossPercent;      // 0: drop this share (0..50 %) of incoming RTP packets, for tests
        /// <summary>JSON object sent with "announce" (raw JSON text, e.g. "{\"role\":\"bot\"}").</summary>
        public string CapabilitiesJson;
        /// <summary>Any other field: name → raw JSON value (e.g. "jitter_buffer_size_ms" → "80").</summary>
        public Dictionary<string, string> RawFields = new Dictionary<string, string>();

        public string ToJson()
        {
            var sb = new StringBuilder("{");
            bool first = true;
            Action<string, string> raw = (name, value) =>
            {
                if (value == null) return;
                if (!first) sb.Append(',');
                first = false;
                Json.String(sb, name);
                sb.Append(':').Append(value);
            };
            raw("signaling_url", Json.Str(SignalingUrl));
            raw("peer_id", Json.Str(PeerId));
            raw("signaling_token", Json.Str(SignalingToken));
            raw("ice_policy", Json.Str(IcePolicy));
            if (StunServers != null)
            {
                var a = new StringBuilder("[");
                for (int i = 0; i < StunServers.Length; i++) { if (i > 0) a.Append(','); Json.String(a, StunServers[i]); }
                raw("stun_servers", a.Append(']').ToString());
            }
            if (TurnServers != null)
            {
                var a = new StringBuilder("[");
                for (int i = 0; i < TurnServers.Length; i++)
                {
                    var t = TurnServers[i];
                    if (i > 0) a.Append(',');
                    a.Append("{\"url\":"); Json.String(a, t.Url);
                    a.Append(",\"username\":"); Json.String(a, t.Username);
                    a.Append(",\"credential\":"); Json.String(a, t.Credential);
                    a.Append('}');
                }
                raw("turn_servers", a.Append(']').ToString());
            }
            raw("max_peers", Json.Int(MaxPeers));
            raw("auto_answer", Json.Bool(AutoAnswer));
            raw("enable_data_channel", Json.Bool(EnableDataChannel));
            raw("event_queue_capacity", Json.Int(EventQueueCapacity));
            raw("worker_threads", Json.Int(WorkerThreads));
            raw("ice_disconnected_timeout_ms", Json.Int(IceDisconnectedTimeoutMs));
            raw("ice_failed_timeout_ms", Json.Int(IceFailedTimeoutMs));
            raw("ice_keepalive_interval_ms", Json.Int(IceKeepaliveIntervalMs));
            raw("reconnect_initial_ms", Json.Int(ReconnectInitialMs));
            raw("reconnect_max_ms", Json.Int(ReconnectMaxMs));
            raw("audio_codec", Json.Str(AudioCodec));
            raw("video_codec", Json.Str(VideoCodec));
            raw("enable_audio", Json.Bool(EnableAudio));
            raw("audio_output_sample_rate", Json.Int(AudioOutputSampleRate));
            raw("audio_output_channels", Json.Int(AudioOutputChannels));
            raw("audio_output_format", Json.Str(AudioOutputFormat));
            raw("audio_queue_capacity", Json.Int(AudioQueueCapacity));
            raw("enable_video", Json.Bool(EnableVideo));
            raw("video_output_format", Json.Str(VideoOutputFormat));
            raw("video_queue_capacity", Json.Int(VideoQueueCapacity));
            raw("video_max_delay_ms", Json.Int(VideoMaxDelayMs));
            raw("simulate_loss_percent", Json.Int(SimulateLossPercent));
            raw("capabilities", CapabilitiesJson);
            if (RawFields != null)
                foreach (var kv in RawFields) raw(kv.Key, kv.Value);
            return sb.Append('}').ToString();
        }

        public override string ToString() { return ToJson(); }
    }

    internal static class Json
    {
        public static string Str(string s)
        {
            if (s == null) return null;
            var sb = new StringBuilder();
            String(sb, s);
            return sb.ToString();
        }

        public static string Int(int? v) { return v.HasValue ? v.Value.ToString(CultureInfo.InvariantCulture) : null; }

        /// <summary>
        /// The integer members of a flat JSON object (e.g. stats counters): name → value. Other
        /// members (strings, booleans, nested values, fractions) are skipped.
        /// </summary>
        public static Dictionary<string, long> Integers(string json)
        {
            var d = new Dictionary<string, long>();
            int i = 0;
            Ws(json, ref i);
            if (i >= json.Length || json[i] != '{') throw new FormatException("JSON object expected");
            i++;
            while (true)
            {
                Ws(json, ref i);
                if (i < json.Length && json[i] == '}') return d;
                string key = ReadString(json, ref i);
                Ws(json, ref i);
                if (i >= json.Length || json[i] != ':') throw new FormatException("':' expected");
                i++;
                Ws(json, ref i);
                int start = i;
                SkipValue(json, ref i);
                long v;
                if (long.TryParse(json.Substring(start, i - start).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
                    d[key] = v;
                Ws(json, ref i);
                if (i < json.Length && json[i] == ',') { i++; continue; }
                if (i < json.Length && json[i] == '}') return d;
                throw new FormatException("',' or '}' expected");
            }
        }

        static void Ws(string s, ref int i) { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }

        static string ReadString(string s, ref int i)
        {
            if (i >= s.Length || s[i] != '"') throw new FormatException("string expected");
            var sb = new StringBuilder();
            for (i++; i < s.Length; i++)
            {
                char c = s[i];
                if (c == '"') { i++; return sb.ToString(); }
                if (c == '\\' && i + 1 < s.Length)
                {
                    c = s[++i];
                    if (c == 'u' && i + 4 < s.Length) { sb.Append((char)int.Parse(s.Substring(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture)); i += 4; continue; }
                    sb.Append(c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c);
                    continue;
                }
                sb.Append(c);
            }
            throw new FormatException("unterminated string");
        }

        static void SkipValue(string s, ref int i)
        {
            if (i < s.Length && s[i] == '"') { ReadString(s, ref i); return; }
            int depth = 0;
            for (; i < s.Length; i++)
            {
                char c = s[i];
                if (c == '"') { ReadString(s, ref i); i--; continue; }
                if (c == '{' || c == '[') depth++;
                else if (c == '}' || c == ']') { if (depth == 0) return; depth--; if (depth == 0) { i++; return; } }
                else if (c == ',' && depth == 0) return;
            }
        }
        public static string Bool(bool? v) { return v.HasValue ? (v.Value ? "true" : "false") : null; }

        public static void String(StringBuilder sb, string s)
        {
            if (s == null) { sb.Append("null"); return; }
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
