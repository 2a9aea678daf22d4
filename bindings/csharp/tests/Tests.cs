// Console tests of the C# binding. Last line: "N passed, N failed"; exit code 0 only if all pass.
// Needs libremotemedia_webrtc.so on LD_LIBRARY_PATH. Network: 127.0.0.1 only.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using RemoteMedia.WebRtc;

static class Tests
{
    static int passed, failed;
    static readonly object outLock = new object();

    [DllImport("remotemedia_webrtc")]
    static extern int rmw_transport_peer_id(ulong transport, byte[] buf, ref UIntPtr len);

    static void Log(string s) { lock (outLock) { Console.WriteLine(s); Console.Out.Flush(); } }

    static void Run(string name, Action test)
    {
        var t0 = DateTime.UtcNow;
        try
        {
            test();
            Interlocked.Increment(ref passed);
            Log(string.Format("PASS {0} ({1:F1} s)", name, (DateTime.UtcNow - t0).TotalSeconds));
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref failed);
            Log("FAIL " + name + ": " + e);
        }
    }

    static void Assert(bool cond, string what) { if (!cond) throw new Exception("assertion failed: " + what); }
    static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new Exception(string.Format("{0}: expected <{1}>, got <{2}>", what, expected, actual));
    }
    static T Throws<T>(Action a, string what) where T : Exception
    {
        try { a(); }
        catch (T e) { return e; }
        catch (Exception e) { throw new Exception(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message); }
        throw new Exception(what + ": expected " + typeof(T).Name + ", nothing was thrown");
    }

    static TransportConfig Cfg(string url, string peerId)
    {
        return new TransportConfig { SignalingUrl = url, PeerId = peerId, IcePolicy = "loopback" };
    }

    // ---- event collection -------------------------------------------------------------------

    /// <summary>Events of one transport, fed by polling (Pump) or by EventReceived (Add).</summary>
    sealed class Inbox
    {
        readonly List<RmwEvent> events = new List<RmwEvent>();
        readonly Transport polled;    // null: fed by EventReceived
        readonly string name;
        public Inbox(string name, Transport polled) { this.name = name; this.polled = polled; }

        public void Add(object sender, RmwEvent e)
        {
            lock (events) { events.Add(e); Monitor.PulseAll(events); }
        }

        /// <summary>Waits for (and removes) the first event matching pred.</summary>
        public RmwEvent Wait(Func<RmwEvent, bool> pred, string what, int timeoutMs = 20000)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (true)
            {
                lock (events)
                {
                    foreach (var e in events)
                    {
                        if (e.Kind == EventKind.Error) throw new Exception(name + ": error event: " + e);
                        if (e.Kind == EventKind.PeerStateChanged && e.PeerState == PeerState.Failed)
                            throw new Exception(name + ": peer failed: " + e);
                    }
                    int i = events.FindIndex(e => pred(e));
                    if (i >= 0) { var e = events[i]; events.RemoveAt(i); return e; }
                    if (DateTime.UtcNow > deadline) throw new TimeoutException(name + ": timed out waiting for " + what);
                    if (polled == null) { Monitor.Wait(events, 100); continue; }
                }
                RmwEvent ev;
                if (polled.TryPollEvent(100, out ev)) Add(null, ev);
            }
        }
    }

    // ---- tests ------------------------------------------------------------------------------

    static void TestVersion()
    {
        string v = Rmw.Version;
        Assert(!string.IsNullOrEmpty(v), "version");
        Equal(Rmw.AbiVersion, Rmw.LibraryAbiVersion, "ABI version");
        Equal("RMW_ERR_NOT_FOUND", Rmw.StatusString((int)Status.NotFound), "status string");
        Log("  library " + v);
        Equal(-16, (int)Status.QueueFull, "RMW_ERR_QUEUE_FULL");
        Equal("RMW_ERR_QUEUE_FULL", Rmw.StatusString((int)Status.QueueFull), "status string of QueueFull");
        Equal("RMW_ERR_CODEC", Rmw.StatusString((int)Status.Codec), "status string of Codec");
        Assert(Rmw.ClockUs > 0, "clock");
    }

    // The binding's native mirrors against sizeof / offsetof of the C header (gcc, x86_64 and
    // aarch64; 32-bit targets with 8-byte aligned uint64_t such as armhf).
    static void TestNativeLayout()
    {
        bool b64 = IntPtr.Size == 8;
        Action<Type, int> size = (t, n) => Equal(n, Marshal.SizeOf(t), "sizeof " + t.Name);
        Action<Type, string, int> off = (t, f, n) => Equal(n, (int)Marshal.OffsetOf(t, f), "offsetof " + t.Name + "." + f);
        size(typeof(NativeEvent), b64 ? 120 : 80);
        off(typeof(NativeEvent), "Message", b64 ? 72 : 52);
        off(typeof(NativeEvent), "TrackId", b64 ? 80 : 56);
        off(typeof(NativeEvent), "MediaKind", b64 ? 88 : 60);
        off(typeof(NativeEvent), "Codec", b64 ? 96 : 64);
        off(typeof(NativeEvent), "ClockRate", b64 ? 104 : 68);
        off(typeof(NativeEvent), "Channels", b64 ? 108 : 72);
        off(typeof(NativeEvent), "Internal", b64 ? 112 : 76);
        size(typeof(NativeAudioFrame), b64 ? 88 : 64);
        off(typeof(NativeAudioFrame), "SampleRate", b64 ? 24 : 12);
        off(typeof(NativeAudioFrame), "Format", b64 ? 32 : 20);
        off(typeof(NativeAudioFrame), "Data", b64 ? 40 : 24);
        off(typeof(NativeAudioFrame), "SamplesPerChannel", b64 ? 48 : 28);
        off(typeof(NativeAudioFrame), "RtpTimestamp", b64 ? 56 : 32);
        off(typeof(NativeAudioFrame), "ArrivalUs", b64 ? 64 : 40);
        off(typeof(NativeAudioFrame), "Level", b64 ? 72 : 48);
        off(typeof(NativeAudioFrame), "Concealed", b64 ? 73 : 49);
        off(typeof(NativeAudioFrame), "Internal", b64 ? 80 : 52);
        size(typeof(NativeAudioTrackConfig), 40);
        off(typeof(NativeAudioTrackConfig), "Fec", 20);
        off(typeof(NativeAudioTrackConfig), "ExpectedLossPercent", 24);
        off(typeof(NativeAudioTrackConfig), "Dtx", 28);
        off(typeof(NativeAudioTrackConfig), "Application", 32);
        off(typeof(NativeAudioTrackConfig), "MaxQueueMs", 36);
        size(typeof(NativeVideoTrackConfig), 24);
        off(typeof(NativeVideoTrackConfig), "Speed", 16);
        off(typeof(NativeVideoTrackConfig), "Threads", 20);
        size(typeof(NativeRawVideoFrame), b64 ? 80 : 48);
        off(typeof(NativeRawVideoFrame), "Plane0", b64 ? 16 : 12);
        off(typeof(NativeRawVideoFrame), "Stride0", b64 ? 40 : 24);
        off(typeof(NativeRawVideoFrame), "Size0", b64 ? 56 : 36);
        off(typeof(NativeRawVideoFrame), "Size2", b64 ? 72 : 44);
        size(typeof(NativeVideoFrame), b64 ? 112 : 80);
        off(typeof(NativeVideoFrame), "Codec", b64 ? 24 : 16);
        off(typeof(NativeVideoFrame), "Width", b64 ? 32 : 20);
        off(typeof(NativeVideoFrame), "Format", b64 ? 40 : 28);
        off(typeof(NativeVideoFrame), "Plane0", b64 ? 48 : 32);
        off(typeof(NativeVideoFrame), "Stride0", b64 ? 72 : 44);
        off(typeof(NativeVideoFrame), "RtpTimestamp", b64 ? 84 : 56);
        off(typeof(NativeVideoFrame), "ArrivalUs", b64 ? 88 : 64);
        off(typeof(NativeVideoFrame), "Keyframe", b64 ? 96 : 72);
        off(typeof(NativeVideoFrame), "Internal", b64 ? 104 : 76);
    }

    static void TestConfigJson()
    {
        var c = new TransportConfig { SignalingUrl = "ws://127.0.0.1:1", PeerId = "a\"b\\c\n\u0001é", MaxPeers = 3, AutoAnswer = false,
            StunServers = new[] { "stun:x" } };
        c.RawFields["jitter_buffer_size_ms"] = "80";
        Equal("{\"signaling_url\":\"ws://127.0.0.1:1\",\"peer_id\":\"a\\\"b\\\\c\\n\\u0001é\",\"stun_servers\":[\"stun:x\"],\"max_peers\":3,\"auto_answer\":false,\"jitter_buffer_size_ms\":80}",
            c.ToJson(), "json");
        var audio = new TransportConfig { EnableAudio = false, AudioOutputSampleRate = 16000, AudioOutputChannels = 1,
            AudioOutputFormat = "s16", AudioQueueCapacity = 64 };
        Equal("{\"enable_audio\":false,\"audio_output_sample_rate\":16000,\"audio_output_channels\":1,\"audio_output_format\":\"s16\",\"audio_queue_capacity\":64}",
            audio.ToJson(), "audio json");
        var video = new TransportConfig { EnableVideo = true, VideoCodec = "vp9", VideoOutputFormat = "rgba", VideoQueueCapacity = 4,
            VideoMaxDelayMs = 300, SimulateLossPercent = 5 };
        Equal("{\"video_codec\":\"vp9\",\"enable_video\":true,\"video_output_format\":\"rgba\",\"video_queue_capacity\":4,\"video_max_delay_ms\":300,\"simulate_loss_percent\":5}",
            video.ToJson(), "video json");
        var e = Throws<RmwException>(() => Transport.FromJson("{not json"), "bad config");
        Equal(Status.Config, e.Status, "bad config status");
        Assert(e.LibraryMessage.Length > 0, "bad config has a message");
        Log("  bad config: " + e.Message);
    }

    static void TestTwoPeers()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            Assert(server.Url.StartsWith("ws://127.0.0.1:"), "url " + server.Url);
            Equal(server.Url, "ws://127.0.0.1:" + server.Port, "url/port");
            Log("  server " + server.Url);

            var alice = new Transport(Cfg(server.Url, "alice"));
            var bob = new Transport(Cfg(server.Url, "bob"));
            var a = new Inbox("alice", alice);       // alice polls
            var b = new Inbox("bob", null);          // bob: EventReceived on its background thread
            bob.EventReceived += b.Add;
            Throws<InvalidOperationException>(() => { RmwEvent x; bob.TryPollEvent(0, out x); }, "poll with EventReceived");
            try
            {
                Equal("alice", alice.PeerId, "alice.PeerId");
                Equal("bob", bob.PeerId, "bob.PeerId");

                a.Wait(e => e.Kind == EventKind.SignalingConnected, "alice signaling");
                b.Wait(e => e.Kind == EventKind.SignalingConnected, "bob signaling");
                a.Wait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "bob", "alice discovers bob");
                b.Wait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "alice", "bob discovers alice");

                // error: unknown peer
                var err = Throws<RmwException>(() => alice.ConnectPeer("nobody-here"), "connect unknown peer");
                Equal(Status.NotFound, err.Status, "unknown peer status");
                Equal("RMW_ERR_NOT_FOUND", err.StatusName, "status name");
                Log("  unknown peer: " + err.Message);
                Throws<RmwException>(() => alice.GetPeerState("nobody-here"), "peer state of unknown peer");

                alice.ConnectPeer("bob");
                a.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "bob" && e.Label == "data", "alice data open");
                b.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "alice" && e.Label == "data", "bob data open");
                Equal(PeerState.Connected, alice.GetPeerState("bob"), "alice→bob state");
                Equal(1, alice.PeerCount(true), "alice connected peers");
                Assert(alice.ListPeersJson().Contains("\"bob\""), "list peers: " + alice.ListPeersJson());
                Assert(alice.StatsJson().StartsWith("{"), "stats json");

                // text both ways (non-ASCII included), binary both ways (NUL bytes included)
                string[] aliceSays = { "hello bob", "héllo bøb ✓ 日本", "bye bob" };
                string[] bobSays = { "hello alice", "fine, thanks ❤", "bye alice" };
                foreach (var s in aliceSays) Equal(1, alice.SendData("bob", s), "sent_to");
                foreach (var s in bobSays) Equal(1, bob.SendData("alice", s), "sent_to");
                foreach (var s in aliceSays)
                {
                    var m = b.Wait(e => e.Kind == EventKind.DataChannelMessage, "bob message");
                    Assert(!m.Binary, "text is not binary");
                    Equal(s, m.Text, "bob got");
                }
                foreach (var s in bobSays)
                {
                    var m = a.Wait(e => e.Kind == EventKind.DataChannelMessage, "alice message");
                    Assert(!m.Binary, "text is not binary");
                    Equal(s, m.Text, "alice got");
                }
                byte[] bin1 = { 0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7f, 0x80 };
                byte[] bin2 = new byte[60000];
                new Random(7).NextBytes(bin2);
                Equal(1, alice.SendData("bob", bin1), "binary sent_to");
                Equal(1, bob.SendData(null, bin2), "binary broadcast sent_to");
                var mb = b.Wait(e => e.Kind == EventKind.DataChannelMessage, "bob binary");
                Assert(mb.Binary && mb.Data.SequenceEqual(bin1), "bob got binary intact");
                var ma = a.Wait(e => e.Kind == EventKind.DataChannelMessage, "alice binary");
                Assert(ma.Binary && ma.Data.SequenceEqual(bin2), "alice got 60000 bytes intact");
                Equal(1, alice.SendData("bob", bin1, 1, 3), "slice sent_to");
                mb = b.Wait(e => e.Kind == EventKind.DataChannelMessage, "bob slice");
                Assert(mb.Data.SequenceEqual(new byte[] { 1, 2, 0xff }), "slice intact");
                Throws<RmwException>(() => alice.SendData("bob", new byte[Rmw.MaxMessageSize + 1]), "oversized message");

                // sessions
                alice.CreateSession("room");
                Equal(Status.AlreadyExists, Throws<RmwException>(() => alice.CreateSession("room"), "dup session").Status, "dup session");
                alice.AddPeerToSession("room", "bob");
                Assert(alice.GetSessionJson("room").Contains("\"bob\""), "session json: " + alice.GetSessionJson("room"));
                Assert(alice.ListSessionsJson().Contains("room"), "session list");
                Equal(1, alice.SendToSession("room", "to the room"), "session sent_to");
                Equal("to the room", b.Wait(e => e.Kind == EventKind.DataChannelMessage, "room message").Text, "room message");
                alice.RemovePeerFromSession("room", "bob");
                alice.RemoveSession("room");
                Equal(Status.NotFound, Throws<RmwException>(() => alice.GetSessionJson("room"), "removed session").Status, "removed session");

                // an extra data channel, used both ways, then closed
                var ch = alice.CreateDataChannel("bob", "extra", new DataChannelOptions { Ordered = true });
                a.Wait(e => e.Kind == EventKind.DataChannelOpen && e.Channel == ch.Id, "alice extra open");
                var bo = b.Wait(e => e.Kind == EventKind.DataChannelOpen && e.Label == "extra", "bob extra open");
                Equal("extra", ch.Label, "label");
                ch.Send("on extra");
                ch.Send(new byte[] { 9, 0, 9 });
                var big = Throws<RmwException>(() => ch.Send(new byte[Rmw.MaxMessageSize + 1]), "oversized channel message");
                Equal(Status.InvalidArgument, big.Status, "oversized channel message status");
                Assert(ch.BufferedAmount < 1000000, "buffered amount");
                ch.SetBufferedAmountLowThreshold(1024);
                var m1 = b.Wait(e => e.Kind == EventKind.DataChannelMessage && e.Channel == bo.Channel, "extra text");
                Equal("on extra", m1.Text, "extra text");
                var m2 = b.Wait(e => e.Kind == EventKind.DataChannelMessage && e.Channel == bo.Channel, "extra binary");
                Assert(m2.Binary && m2.Data.SequenceEqual(new byte[] { 9, 0, 9 }), "extra binary");
                bob.GetDataChannel(bo.Channel).Send("reply on extra");
                Equal("reply on extra", a.Wait(e => e.Kind == EventKind.DataChannelMessage && e.Channel == ch.Id, "extra reply").Text, "reply");
                ch.Close();
                a.Wait(e => e.Kind == EventKind.DataChannelClose && e.Channel == ch.Id, "alice extra close");

                alice.DisconnectPeer("bob");
                b.Wait(e => e.Kind == EventKind.PeerStateChanged && e.PeerId == "alice" &&
                            (e.PeerState == PeerState.Closed || e.PeerState == PeerState.Disconnected), "bob sees disconnect");
            }
            finally
            {
                alice.Dispose();
                bob.Dispose();
            }
            // disposing twice is fine; use after dispose throws ObjectDisposedException
            alice.Dispose();
            bob.Dispose();
            Equal(0UL, alice.Id, "id after dispose");
            Throws<ObjectDisposedException>(() => { var x = alice.PeerId; }, "PeerId after dispose");
            Throws<ObjectDisposedException>(() => alice.SendData(null, "x"), "SendData after dispose");
            Throws<ObjectDisposedException>(() => { RmwEvent x; alice.TryPollEvent(0, out x); }, "poll after dispose");
            server.Dispose();
            server.Dispose();
        }
    }

    static void TestDisposeFromHandler()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            var t = new Transport(Cfg(server.Url, "self-disposer"));
            var done = new ManualResetEvent(false);
            Exception inHandler = null;
            t.EventReceived += (s, e) =>
            {
                if (e.Kind != EventKind.SignalingConnected) return;
                try { ((Transport)s).Dispose(); } catch (Exception x) { inHandler = x; }
                done.Set();
            };
            Assert(done.WaitOne(20000), "handler ran");
            if (inHandler != null) throw inHandler;
            Assert(t.IsDisposed, "disposed from its own handler");
            t.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static ulong[] CreateAndDrop(string url, int n)
    {
        var ids = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            var t = new Transport(Cfg(url, "leaked-" + i));
            if (i == 0) t.EventReceived += (s, e) => { };   // one with a background event thread
            ids[i] = t.Id;
        }
        return ids;
    }

    static bool IsLive(ulong id)
    {
        UIntPtr len = UIntPtr.Zero;
        int st = rmw_transport_peer_id(id, null, ref len);
        return st != (int)Status.InvalidHandle;
    }

    static void TestFinalizer()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            int before = TransportHandle.FinalizedCount;
            ulong[] ids = CreateAndDrop(server.Url, 5);
            foreach (var id in ids) Assert(IsLive(id), "live before GC");
            int live = ids.Length;
            for (int round = 0; round < 50 && live > 0; round++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                live = ids.Count(IsLive);
                if (live > 0) Thread.Sleep(100);
            }
            Equal(0, live, "transports still live after GC (finalizer did not free them)");
            Assert(TransportHandle.FinalizedCount - before >= ids.Length, "finalized count " + (TransportHandle.FinalizedCount - before));
            // the raw ids are now invalid: the library says so, no crash
            UIntPtr len = UIntPtr.Zero;
            Equal((int)Status.InvalidHandle, rmw_transport_peer_id(ids[0], null, ref len), "status for a finalized id");
        }
    }

    static long StatusKb(string field)
    {
        foreach (var line in File.ReadAllLines("/proc/self/status"))
            if (line.StartsWith(field + ":"))
                return long.Parse(new string(line.Substring(field.Length + 1).Where(char.IsDigit).ToArray()));
        return -1;
    }

    static int ThreadCount() { return Directory.GetDirectories("/proc/self/task").Length; }

    static void TestManyTransports()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            Action<int> churn = n =>
            {
                for (int i = 0; i < n; i++)
                {
                    using (var t = new Transport(Cfg(server.Url, null))) { }
                }
            };
            churn(50);   // warm up
            GC.Collect(); GC.WaitForPendingFinalizers();
            Thread.Sleep(300);
            long rss0 = StatusKb("VmRSS");
            int threads0 = ThreadCount();
            var t0 = DateTime.UtcNow;
            churn(1000);
            double secs = (DateTime.UtcNow - t0).TotalSeconds;
            GC.Collect(); GC.WaitForPendingFinalizers();
            int threads1 = ThreadCount();
            for (int i = 0; i < 50 && threads1 > threads0 + 2; i++) { Thread.Sleep(100); threads1 = ThreadCount(); }
            long rss1 = StatusKb("VmRSS");
            Log(string.Format("  1000 transports in {0:F1} s; RSS {1} → {2} kB (+{3} kB); threads {4} → {5}",
                secs, rss0, rss1, rss1 - rss0, threads0, threads1));
            Assert(rss1 - rss0 < 64 * 1024, "RSS grew by " + (rss1 - rss0) + " kB (limit 65536)");
            Assert(threads1 <= threads0 + 2, "threads " + threads0 + " → " + threads1);
        }
    }

    // ---- audio ------------------------------------------------------------------------------

    static float[] Sine(double hz, int rate, int start, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(0.3 * Math.Sin(2 * Math.PI * hz * (start + i) / rate));
        return x;
    }

    /// <summary>Dominant frequency by rising zero crossings, interpolated between samples.</summary>
    static double Frequency(float[] x, int rate)
    {
        double first = -1, last = 0;
        int count = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i - 1] < 0 && x[i] >= 0)
            {
                double at = i - 1 + x[i - 1] / (double)(x[i - 1] - x[i]);
                if (first < 0) first = at;
                last = at;
                count++;
            }
        }
        return count < 2 ? 0 : (count - 1) * (double)rate / (last - first);
    }

    static float[] Channel(List<AudioFrame> frames, int c)
    {
        var o = new List<float>();
        foreach (var f in frames)
        {
            var s = f.ToFloat();
            for (int i = c; i < s.Length; i += f.Channels) o.Add(s[i]);
        }
        return o.ToArray();
    }

    /// <summary>Polls t's audio on a thread of its own, keeping frames of one peer, until Stop.</summary>
    sealed class AudioCollector
    {
        readonly List<AudioFrame> frames = new List<AudioFrame>();
        readonly ManualResetEvent stop = new ManualResetEvent(false);
        readonly Thread thread;
        Exception error;

        public AudioCollector(Transport t, string peer)
        {
            thread = new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        bool stopping = stop.WaitOne(0);
                        AudioFrame f;
                        if (t.TryPollAudio(stopping ? 0 : 50, out f)) { if (f.PeerId == peer) lock (frames) frames.Add(f); }
                        else if (stopping) return;   // drained
                    }
                }
                catch (Exception e) { error = e; }
            }) { IsBackground = true };
            thread.Start();
        }

        public List<AudioFrame> Stop()
        {
            stop.Set();
            thread.Join();
            if (error != null) throw new Exception("TryPollAudio failed", error);
            lock (frames) return new List<AudioFrame>(frames);
        }
    }

    static void CheckTone(string who, List<AudioFrame> frames, int channels, SampleFormat format, double minSeconds)
    {
        Assert(frames.Count > 0, who + ": no audio received");
        long total = 0;
        for (int i = 0; i < frames.Count; i++)
        {
            var f = frames[i];
            Equal(48000, f.SampleRate, who + " rate");
            Equal(channels, f.Channels, who + " channels");
            Equal(format, f.Format, who + " format");
            int n = f.SamplesPerChannel * f.Channels;
            Assert(format == SampleFormat.F32 ? f.F32 != null && f.F32.Length == n && f.S16 == null
                                              : f.S16 != null && f.S16.Length == n && f.F32 == null, who + ": sample array of frame " + i);
            Assert(!f.Concealed, who + ": frame " + i + " concealed on a lossless link");
            Assert(f.TrackId != null && f.TrackId == frames[0].TrackId, who + ": track id of frame " + i);
            Assert(f.ArrivalUs > 0 && f.ArrivalUs <= Rmw.ClockUs, who + ": arrival time of frame " + i);
            if (i > 0)
                Equal(unchecked(frames[i - 1].RtpTimestamp + (uint)frames[i - 1].SamplesPerChannel), f.RtpTimestamp, who + ": RTP time of frame " + i);
            total += f.SamplesPerChannel;
        }
        double secs = total / 48000.0;
        Assert(secs >= minSeconds, who + ": " + secs + " s received, want >= " + minSeconds);
        for (int c = 0; c < channels; c++)
        {
            var x = Channel(frames, c).Skip(4800).ToArray();   // the codec fades in over 100 ms
            double hz = Frequency(x, 48000);
            double rms = Math.Sqrt(x.Select(v => (double)v * v).Average());
            Log(string.Format("  {0}: {1} frames, {2:F2} s, channel {3}: {4:F2} Hz, RMS {5:F3}, level {6}", who, frames.Count, secs, c, hz, rms,
                frames[frames.Count / 2].Level));
            Assert(Math.Abs(hz - 440) <= 3, who + ": " + hz + " Hz received, 440 Hz sent");
            Assert(rms > 0.12 && rms < 0.32, who + ": RMS " + rms + " for a 0.3 sine");
        }
        Assert(frames[frames.Count / 2].Level < 40, who + ": level " + frames[frames.Count / 2].Level + " -dBov for a 0.3 sine");
    }

    static void TestAudioSine()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(Cfg(server.Url, "alice")))
        using (var bob = new Transport(Cfg(server.Url, "bob")))
        using (var carol = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "carol", IcePolicy = "loopback",
            AudioOutputChannels = 1, AudioOutputFormat = "s16" }))
        {
            var a = new Inbox("alice", alice);
            var b = new Inbox("bob", bob);
            var c = new Inbox("carol", carol);
            a.Wait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "bob", "alice discovers bob");
            a.Wait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "carol", "alice discovers carol");
            alice.ConnectPeer("bob");
            alice.ConnectPeer("carol");
            a.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "bob", "alice→bob open");
            a.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "carol", "alice→carol open");
            b.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "alice", "bob open");
            c.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "alice", "carol open");

            var track = alice.AddAudioTrack(TrackTarget.Peer("bob"));
            Assert(track.Id != 0, "track id");
            Equal(1, track.Channels, "default channels");
            var bobRx = new AudioCollector(bob, "alice");
            var carolRx = new AudioCollector(carol, "alice");

            // 1.5 s in 20 ms chunks, paced in real time: float[], short[] and a slice of a
            // larger float[] in turn; after 0.5 s to every peer (carol joins).
            const int chunk = 960, total = 72000;
            var whole = Sine(440, 48000, 0, total);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            int sent = 0;
            for (int k = 0; sent < total; k++)
            {
                switch (k % 3)
                {
                    case 0: track.Send(Sine(440, 48000, sent, chunk)); break;
                    case 1: track.Send(Sine(440, 48000, sent, chunk).Select(v => (short)Math.Round(v * 32767)).ToArray()); break;
                    default: track.Send(whole, sent, chunk); break;
                }
                sent += chunk;
                if (sent == 24000) track.SetTarget(TrackTarget.All);
                int wait = (int)(sent * 1000L / 48000 - sw.ElapsedMilliseconds);
                if (wait > 0) Thread.Sleep(wait);
            }
            Thread.Sleep(300);   // the last frames' way through encoder, network and jitter buffer
            var bobFrames = bobRx.Stop();
            var carolFrames = carolRx.Stop();
            CheckTone("bob", bobFrames, 2, SampleFormat.F32, 1.3);
            CheckTone("carol", carolFrames, 1, SampleFormat.S16, 0.8);

            foreach (var x in new[] { Tuple.Create(b, bobFrames), Tuple.Create(c, carolFrames) })
            {
                var ev = x.Item1.Wait(e => e.Kind == EventKind.TrackAdded, "TrackAdded");
                Log("  " + ev);
                Equal("alice", ev.PeerId, "TrackAdded peer");
                Equal(MediaKind.Audio, ev.MediaKind, "TrackAdded media kind");
                Equal("opus", ev.Codec, "TrackAdded codec");
                Equal(48000u, ev.ClockRate, "TrackAdded clock rate");
                Assert(ev.Channels > 0, "TrackAdded channels");
                Equal(x.Item2[0].TrackId, ev.TrackId, "TrackAdded track id = the frames' track id");
            }

            var st = track.Stats;
            Log("  track stats: " + st);
            Equal((long)sent, st.SamplesIn, "samples_in");
            Equal((long)(sent / chunk), st.FramesEncoded, "frames_encoded");
            Equal(0L, st.QueueFull, "queue_full");
            Equal(0L, st.FramesDtx, "frames_dtx");
            Equal(2, st.Peers, "peers");
            Equal(0, st.PeersBusy, "peers_busy");
            Assert(st.PacketsSent > st.FramesEncoded && st.PacketsSent <= 2 * st.FramesEncoded, "packets_sent " + st.PacketsSent);
            Assert(st.BytesSent > 10 * st.PacketsSent, "bytes_sent " + st.BytesSent);
            Assert(track.StatsJson().Contains("\"samples_in\":" + sent), "stats json " + track.StatsJson());
            Assert(bob.StatsJson().Contains("\"audio_frames_dropped\":0"), "bob dropped frames: " + bob.StatsJson());

            track.Dispose();
            track.Dispose();
            Assert(track.IsDisposed && track.Id == 0, "disposed");
            Throws<ObjectDisposedException>(() => track.Send(new float[960]), "Send after Dispose");
            Throws<ObjectDisposedException>(() => track.SetTarget(TrackTarget.None), "SetTarget after Dispose");
            Throws<ObjectDisposedException>(() => { var s = track.Stats; }, "Stats after Dispose");
        }
    }

    static void TestAudioErrors()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            var alice = new Transport(Cfg(server.Url, "alice"));
            var def = new AudioTrackConfig();
            Log("  defaults: " + def);
            Assert(def.SampleRate == 48000 && def.Channels == 1 && def.FrameMs == 20 && def.Bitrate == 32000 && def.Complexity == 9 &&
                   def.Fec && def.ExpectedLossPercent == 10 && !def.Dtx && def.Application == OpusApplication.Voip && def.MaxQueueMs == 200,
                   "defaults " + def);
            var bad = new Dictionary<string, Action<AudioTrackConfig>>
            {
                { "channels 3", x => x.Channels = 3 },
                { "channels -1", x => x.Channels = -1 },
                { "sample rate 22050", x => x.SampleRate = 22050 },
                { "frame 15 ms", x => x.FrameMs = 15 },
                { "bitrate 1000", x => x.Bitrate = 1000 },
                { "complexity 11", x => x.Complexity = 11 },
                { "application 7", x => x.Application = (OpusApplication)7 },
                { "queue shorter than a frame", x => x.MaxQueueMs = 5 },
            };
            foreach (var kv in bad)
            {
                var cfg = new AudioTrackConfig();
                kv.Value(cfg);
                var e = Throws<RmwException>(() => alice.AddAudioTrack(TrackTarget.All, cfg), kv.Key);
                Equal(Status.InvalidArgument, e.Status, kv.Key);
            }
            Equal(Status.NotFound, Throws<RmwException>(() => alice.AddAudioTrack(TrackTarget.Peer("nobody")), "unknown peer").Status, "unknown peer");
            Equal(Status.NotFound, Throws<RmwException>(() => alice.AddAudioTrack(TrackTarget.Session("nowhere")), "unknown session").Status, "unknown session");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => alice.AddAudioTrack(new TrackTarget(TargetKind.Peer, null)), "peer without id").Status, "peer without id");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => alice.AddAudioTrack(new TrackTarget((TargetKind)9, null)), "bad kind").Status, "bad kind");
            Throws<ArgumentNullException>(() => alice.AddAudioTrack(null), "null target");

            var stereo = alice.AddAudioTrack(TrackTarget.None, new AudioTrackConfig { Channels = 2 });
            Equal(Status.InvalidArgument, Throws<RmwException>(() => stereo.Send(new float[3]), "3 samples on stereo").Status, "partial frame");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => stereo.Send(new short[0]), "no samples").Status, "no samples");
            Throws<ArgumentNullException>(() => stereo.Send((float[])null), "null pcm");
            Throws<ArgumentOutOfRangeException>(() => stereo.Send(new float[10], 8, 4), "slice past the end");
            stereo.Send(new short[4]);
            stereo.Send(new float[1920]);
            stereo.Send(new float[10], 2, 6);
            Equal(Status.NotFound, Throws<RmwException>(() => stereo.SetTarget(TrackTarget.Peer("nobody")), "retarget").Status, "retarget to nobody");
            stereo.SetTarget(TrackTarget.All);
            var st = stereo.Stats;
            Equal(2L + 960 + 3, st.SamplesIn, "samples_in");
            Equal(0, st.Peers, "peers");
            stereo.Dispose();
            Throws<ObjectDisposedException>(() => stereo.Send(new short[2]), "Send(short[]) after Dispose");
            Throws<ObjectDisposedException>(() => stereo.TrySend(new float[2]), "TrySend after Dispose");

            AudioFrame f;
            Assert(!alice.TryPollAudio(0, out f) && f == null, "nothing to poll");
            var t0 = DateTime.UtcNow;
            Assert(alice.PollAudio(30) == null, "PollAudio(30) times out");
            Assert((DateTime.UtcNow - t0).TotalMilliseconds >= 25, "PollAudio waited");

            Equal(Status.Config, Throws<RmwException>(() => new Transport(new TransportConfig { IcePolicy = "loopback", AudioOutputFormat = "u8" }),
                "output format u8").Status, "output format u8");
            Equal(Status.Config, Throws<RmwException>(() => new Transport(new TransportConfig { IcePolicy = "loopback", AudioOutputChannels = 3 }),
                "output channels 3").Status, "output channels 3");
            using (var mute = new Transport(new TransportConfig { SignalingUrl = server.Url, IcePolicy = "loopback", EnableAudio = false }))
                Equal(Status.InvalidArgument, Throws<RmwException>(() => mute.AddAudioTrack(TrackTarget.None), "audio disabled").Status, "audio disabled");

            // Disposing the transport frees its tracks and ends a blocked TryPollAudio.
            var orphan = alice.AddAudioTrack(TrackTarget.All);
            Exception pollEnd = null;
            var poller = new Thread(() => { try { AudioFrame x; alice.TryPollAudio(-1, out x); } catch (Exception e) { pollEnd = e; } });
            poller.Start();
            Thread.Sleep(100);
            alice.Dispose();
            Assert(poller.Join(2000), "TryPollAudio(-1) still blocked 2 s after Dispose");
            Assert(pollEnd is ObjectDisposedException, "TryPollAudio(-1) ended by Dispose: " + pollEnd);
            Throws<ObjectDisposedException>(() => orphan.Send(new float[960]), "Send after the transport's Dispose");
            orphan.Dispose();   // no error: freed with its transport
            Throws<ObjectDisposedException>(() => alice.AddAudioTrack(TrackTarget.None), "AddAudioTrack after Dispose");
            Throws<ObjectDisposedException>(() => alice.TryPollAudio(0, out f), "TryPollAudio after Dispose");
        }
    }

    static void TestAudioQueueFull()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(Cfg(server.Url, "alice")))
        {
            var track = alice.AddAudioTrack(TrackTarget.None, new AudioTrackConfig { MaxQueueMs = 100 });
            var pcm = Sine(440, 48000, 0, 4800);   // 100 ms a call
            int accepted = 0, refused = 0;
            QueueFullException last = null;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < 200; i++)
            {
                if (i % 2 == 0)
                {
                    try { track.Send(pcm); accepted++; }
                    catch (QueueFullException e) { refused++; last = e; }
                }
                else if (track.TrySend(pcm)) accepted++;
                else refused++;
            }
            Log(string.Format("  20 s offered in {0} ms: {1} accepted, {2} refused ({3})", sw.ElapsedMilliseconds, accepted, refused,
                last == null ? "-" : last.Message));
            Assert(last != null, "200 x 100 ms sent at once into a 100 ms queue: Send never threw QueueFullException");
            Equal(Status.QueueFull, last.Status, "exception status");
            Assert(last is RmwException, "QueueFullException is an RmwException");
            Assert(sw.ElapsedMilliseconds < 2000, "sending blocked");
            var st = track.Stats;
            Equal((long)refused, st.QueueFull, "queue_full");
            Equal(accepted * 4800L, st.SamplesIn, "samples_in");
            track.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void AddAndDropTrack(Transport t) { t.AddAudioTrack(TrackTarget.None); }

    static void TestAudioTrackFinalizer()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(Cfg(server.Url, "alice")))
        {
            AddAndDropTrack(alice);
            Assert(!alice.StatsJson().Contains("\"audio_tracks\":[]"), "one track: " + alice.StatsJson());
            for (int i = 0; i < 50 && !alice.StatsJson().Contains("\"audio_tracks\":[]"); i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Thread.Sleep(20);
            }
            Assert(alice.StatsJson().Contains("\"audio_tracks\":[]"), "the finalizer did not free the forgotten track: " + alice.StatsJson());
        }
    }

    // ---- video ------------------------------------------------------------------------------

    /// <summary>
    /// Frame n of a moving test pattern as tight I420: a vertical luma gradient, a white bar
    /// 16 px wide moving 8 px per frame, colour ramps in the chroma planes, and n as 16 black (0)
    /// / white (1) 16x16 blocks along the top (rows 16..31, bit b at x = 32 + 16 b).
    /// </summary>
    static RawVideoFrame Pattern(int w, int h, int n)
    {
        var f = RawVideoFrame.NewI420(w, h);
        byte[] y = f.Planes[0], u = f.Planes[1], v = f.Planes[2];
        int bar = (8 * n) % w;
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
                y[r * w + c] = c >= bar && c < bar + 16 ? (byte)235 : (byte)(40 + r * 120 / h);
        for (int bit = 0; bit < 16; bit++)
        {
            int x0 = 32 + 16 * bit;
            byte val = ((n >> bit) & 1) == 1 ? (byte)235 : (byte)16;
            for (int r = 16; r < 32; r++)
                for (int c = x0; c < x0 + 16 && c < w; c++) y[r * w + c] = val;
        }
        int cw = (w + 1) / 2, ch = (h + 1) / 2;
        for (int r = 0; r < ch; r++)
            for (int c = 0; c < cw; c++)
            {
                u[r * cw + c] = (byte)(90 + c * 80 / cw);
                v[r * cw + c] = (byte)(90 + r * 80 / ch);
            }
        return f;
    }

    /// <summary>The number a received luma plane carries (-1 if a block is unreadable): the mean of each block's 8x8 centre.</summary>
    static int FrameNumber(byte[] y, int stride)
    {
        int n = 0;
        for (int bit = 0; bit < 16; bit++)
        {
            int x0 = 32 + 16 * bit, sum = 0;
            for (int r = 20; r < 28; r++)
                for (int c = x0 + 4; c < x0 + 12; c++) sum += y[r * stride + c];
            int mean = sum / 64;
            if (mean > 170) n |= 1 << bit;
            else if (mean >= 80) return -1;
        }
        return n;
    }

    /// <summary>PSNR (dB) of a received frame's Y plane against the Y plane sent.</summary>
    static double LumaPsnr(VideoFrame got, RawVideoFrame sent)
    {
        double sse = 0;
        for (int r = 0; r < sent.Height; r++)
            for (int c = 0; c < sent.Width; c++)
            {
                double d = got.Planes[0][r * got.Strides[0] + c] - sent.Planes[0][r * sent.Width + c];
                sse += d * d;
            }
        double mse = sse / (sent.Width * sent.Height);
        return mse == 0 ? 99 : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    /// <summary>Polls t's video on a thread of its own (the library keeps only the newest few frames), keeping frames of one peer, until Stop.</summary>
    sealed class VideoCollector
    {
        readonly List<VideoFrame> frames = new List<VideoFrame>();
        readonly ManualResetEvent stop = new ManualResetEvent(false);
        readonly Thread thread;
        Exception error;

        public VideoCollector(Transport t, string peer)
        {
            thread = new Thread(() =>
            {
                try
                {
                    while (true)
                    {
                        bool stopping = stop.WaitOne(0);
                        VideoFrame f;
                        if (t.TryPollVideo(stopping ? 0 : 50, out f)) { if (f.PeerId == peer) lock (frames) frames.Add(f); }
                        else if (stopping) return;   // drained
                    }
                }
                catch (Exception e) { error = e; }
            }) { IsBackground = true };
            thread.Start();
        }

        public List<VideoFrame> Stop()
        {
            stop.Set();
            thread.Join();
            if (error != null) throw new Exception("TryPollVideo failed", error);
            lock (frames) return new List<VideoFrame>(frames);
        }
    }

    static void ConnectPair(Inbox a, Inbox b, Transport alice)
    {
        a.Wait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "bob", "alice discovers bob");
        alice.ConnectPeer("bob");
        a.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "bob", "alice→bob open");
        b.Wait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "alice", "bob open");
    }

    /// <summary>Sends frames from..to-1 of the pattern at 30 fps in real time (I420 planes with strides); at(n) runs before frame n.</summary>
    static void SendPaced(VideoTrack track, int w, int h, int from, int to, Action<int> at)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int n = from; n < to; n++)
        {
            if (at != null) at(n);
            var f = Pattern(w, h, n);
            track.Send(w, h, f.Planes[0], f.Strides[0], f.Planes[1], f.Strides[1], f.Planes[2], f.Strides[2]);
            int wait = (int)((n - from + 1) * 1000L / 30 - sw.ElapsedMilliseconds);
            if (wait > 0) Thread.Sleep(wait);
        }
    }

    static long VideoDropped(Transport t)
    {
        string s = t.StatsJson();
        const string key = "\"video_frames_dropped\":";
        int i = s.IndexOf(key, StringComparison.Ordinal);
        Assert(i >= 0, "video_frames_dropped in " + s);
        i += key.Length;
        int j = i;
        while (j < s.Length && char.IsDigit(s[j])) j++;
        return long.Parse(s.Substring(i, j - i));
    }

    /// <summary>
    /// Alice sends 45 frames of the 320x240 pattern at 30 fps to bob, who polls concurrently:
    /// in order, most of them, a keyframe first, the codec asked for, close to what was sent.
    /// Then bob stops polling for 15 frames: only the newest 8 (video_queue_capacity) are kept.
    /// </summary>
    static void TestVideoPattern(string codec)
    {
        const int w = 320, h = 240, sent = 45;
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "alice", IcePolicy = "loopback", VideoCodec = codec }))
        using (var bob = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "bob", IcePolicy = "loopback", VideoCodec = codec }))
        {
            var a = new Inbox("alice", alice);
            var b = new Inbox("bob", bob);
            ConnectPair(a, b, alice);

            var track = alice.AddVideoTrack(TrackTarget.Peer("bob"));
            Assert(track.Id != 0, "track id");
            var rx = new VideoCollector(bob, "alice");
            SendPaced(track, w, h, 0, sent, n =>
            {
                if (n == 20) track.RequestKeyframe();
                if (n == 30) track.SetBitrate(800);
            });
            Thread.Sleep(500);   // the last frames' way through encoder, network and decoder
            var frames = rx.Stop();
            Assert(frames.Count > 0, "no video received");

            var numbers = new List<int>();
            double minPsnr = double.MaxValue, sumPsnr = 0;
            bool keyAfterRequest = false;
            for (int i = 0; i < frames.Count; i++)
            {
                var f = frames[i];
                string what = codec + " frame " + i;
                Assert(f.Width == w && f.Height == h && f.Format == VideoFormat.I420 && f.Codec == codec && f.Planes.Length == 3 && f.Strides.Length == 3,
                    what + ": " + f);
                Assert(f.Strides[0] >= w && f.Strides[1] >= (w + 1) / 2 && f.Planes[0].Length == f.Strides[0] * h &&
                       f.Planes[2].Length == f.Strides[2] * ((h + 1) / 2), what + ": strides / plane sizes");
                Assert(f.TrackId != null && f.TrackId == frames[0].TrackId, what + ": track id " + f.TrackId);
                Assert(f.ArrivalUs > 0 && f.ArrivalUs <= Rmw.ClockUs && (i == 0 || f.ArrivalUs >= frames[i - 1].ArrivalUs), what + ": arrival time");
                int n = FrameNumber(f.Planes[0], f.Strides[0]);
                Assert(n >= 0 && n < sent, what + ": unreadable frame number " + n);
                if (i > 0)
                {
                    Assert(n > numbers[i - 1], what + ": number " + n + " after " + numbers[i - 1] + " (out of order or repeated)");
                    uint dt = unchecked(f.RtpTimestamp - frames[i - 1].RtpTimestamp);
                    Assert(dt > 0 && dt <= Rmw.VideoClockRate, what + ": RTP timestamp step " + dt);
                }
                numbers.Add(n);
                if (f.Keyframe && n >= 20) keyAfterRequest = true;
                double p = LumaPsnr(f, Pattern(w, h, n));
                sumPsnr += p;
                minPsnr = Math.Min(minPsnr, p);
                Assert(p >= 30, what + " (number " + n + ", key " + f.Keyframe + "): luma PSNR " + p.ToString("F1") + " dB < 30 dB");
            }
            Log(string.Format("  {0}: {1} of {2} frames, numbers {3}, luma PSNR min {4:F1} mean {5:F1} dB", codec, frames.Count, sent,
                string.Join(" ", numbers), minPsnr, sumPsnr / frames.Count));
            Assert(frames.Count >= sent * 8 / 10, frames.Count + " of " + sent + " frames arrived, want >= 80 %");
            Assert(frames[0].Keyframe, "the first frame is not a keyframe");
            Equal(sent - 1, numbers[numbers.Count - 1], "last frame received (the newest frame always wins)");
            Assert(keyAfterRequest, "no keyframe at or after the RequestKeyframe before frame 20");

            var ev = b.Wait(e => e.Kind == EventKind.TrackAdded && e.MediaKind == MediaKind.Video, "TrackAdded (video)");
            Log("  " + ev);
            Equal("alice", ev.PeerId, "TrackAdded peer");
            Equal(codec, ev.Codec, "TrackAdded codec");
            Equal((uint)Rmw.VideoClockRate, ev.ClockRate, "TrackAdded clock rate");
            Equal(frames[0].TrackId, ev.TrackId, "TrackAdded track id = the frames' track id");

            var st = track.Stats;
            Log("  track stats: " + st);
            Equal((long)track.Id, st.Track, "stats track = Id");
            Equal((long)sent, st.FramesIn, "frames_in");
            Equal((long)sent, st.FramesEncoded + st.FramesDropped, "frames_encoded + frames_dropped");
            Equal(1, st.Peers, "peers");
            Equal(0, st.PeersBusy, "peers_busy");
            Assert(st.Width == w && st.Height == h, "stats size " + st.Width + "x" + st.Height);
            Assert(st.KeyframesEncoded >= 2 && st.KeyframesRequested >= 1, "keyframes " + st.KeyframesEncoded + ", requested " + st.KeyframesRequested);
            Equal(800, st.TargetBitrateKbps, "target bitrate");
            Assert(st.PacketsSent >= st.FramesEncoded && st.BytesSent >= 50 * st.PacketsSent, "packets / bytes sent");
            Equal(0L, st.EncodeErrors, "encode_errors");

            // Bob stops polling while 15 more frames come: the queue keeps the newest 8.
            long before = VideoDropped(bob);
            SendPaced(track, w, h, sent, sent + 15, null);
            Thread.Sleep(400);
            var kept = new List<int>();
            VideoFrame k;
            while (bob.TryPollVideo(0, out k)) kept.Add(FrameNumber(k.Planes[0], k.Strides[0]));
            long dropped = VideoDropped(bob) - before;
            Log(string.Format("  not polled during 15 frames: kept {0}, {1} dropped", string.Join(" ", kept), dropped));
            Equal(8, kept.Count, "frames kept (video_queue_capacity)");
            Equal(sent + 14, kept[7], "the newest frame kept");
            for (int i = 1; i < kept.Count; i++) Assert(kept[i] > kept[i - 1], "kept frames in order");
            Assert(dropped >= 1, "video_frames_dropped grew");

            track.Dispose();
            track.Dispose();
            Assert(track.IsDisposed && track.Id == 0, "disposed");
            Throws<ObjectDisposedException>(() => SendPaced(track, w, h, 0, 1, null), "Send after Dispose");
        }
    }

    /// <summary>RGBA and BGRA input with a padded stride (padding garbage; managed and native memory), received as RGBA: two flat colours within a few units.</summary>
    static void TestVideoRgba()
    {
        const int w = 160, h = 120, stride = 4 * 160 + 48;
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(Cfg(server.Url, "alice")))
        using (var bob = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "bob", IcePolicy = "loopback", VideoOutputFormat = "rgba" }))
        {
            var a = new Inbox("alice", alice);
            var b = new Inbox("bob", bob);
            ConnectPair(a, b, alice);

            byte[] left = { 200, 40, 60 }, right = { 30, 160, 220 };
            Func<bool, byte[]> image = bgra =>
            {
                var pix = new byte[stride * h];
                for (int i = 0; i < pix.Length; i++) pix[i] = 0xA5;   // row padding: never read
                for (int r = 0; r < h; r++)
                    for (int c = 0; c < w; c++)
                    {
                        var col = c < w / 2 ? left : right;
                        int o = r * stride + 4 * c;
                        pix[o] = bgra ? col[2] : col[0];
                        pix[o + 1] = col[1];
                        pix[o + 2] = bgra ? col[0] : col[2];
                        pix[o + 3] = 255;
                    }
                return pix;
            };
            byte[] rgba = image(false), bgraPix = image(true);
            IntPtr native = Marshal.AllocHGlobal(rgba.Length);
            try
            {
                Marshal.Copy(rgba, 0, native, rgba.Length);
                var track = alice.AddVideoTrack(TrackTarget.Peer("bob"));
                var rx = new VideoCollector(bob, "alice");
                var sw = System.Diagnostics.Stopwatch.StartNew();
                for (int n = 0; n < 21; n++)
                {
                    switch (n % 3)
                    {
                        case 0: track.Send(PixelFormat.Rgba, w, h, rgba, stride); break;
                        case 1: track.Send(PixelFormat.Bgra, w, h, bgraPix, stride); break;
                        default: track.Send(PixelFormat.Rgba, w, h, native, stride, rgba.Length); break;
                    }
                    int wait = (int)((n + 1) * 1000L / 30 - sw.ElapsedMilliseconds);
                    if (wait > 0) Thread.Sleep(wait);
                }
                Thread.Sleep(400);
                var frames = rx.Stop();
                Assert(frames.Count >= 10, frames.Count + " of 21 frames arrived");
                int worst = 0;
                for (int i = 0; i < frames.Count; i++)
                {
                    var f = frames[i];
                    Assert(f.Format == VideoFormat.Rgba && f.Width == w && f.Height == h && f.Planes.Length == 1 && f.Strides.Length == 1 &&
                           f.Strides[0] >= 4 * w && f.Planes[0].Length == f.Strides[0] * h, "frame " + i + ": " + f);
                    // Away from the edge between the colours (chroma is subsampled, the codec blurs).
                    foreach (var at in new[] { Tuple.Create(8, 8, left), Tuple.Create(w / 2 - 12, h - 10, left),
                                               Tuple.Create(w / 2 + 12, 10, right), Tuple.Create(w - 4, h - 4, right) })
                    {
                        int o = at.Item2 * f.Strides[0] + 4 * at.Item1;
                        for (int c = 0; c < 3; c++)
                        {
                            int d = Math.Abs(f.Planes[0][o + c] - at.Item3[c]);
                            worst = Math.Max(worst, d);
                            Assert(d <= 6, string.Format("frame {0} pixel ({1},{2}) channel {3} = {4}, want {5} ±6", i, at.Item1, at.Item2, c,
                                f.Planes[0][o + c], at.Item3[c]));
                        }
                        Equal((byte)255, f.Planes[0][o + 3], "alpha");
                    }
                }
                Log(string.Format("  {0} of 21 frames, RGBA {1}x{2} stride {3}, largest colour error {4}", frames.Count, w, h, frames[0].Strides[0], worst));
                track.Dispose();
            }
            finally { Marshal.FreeHGlobal(native); }
        }
    }

    static void TestVideoErrors()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        {
            var alice = new Transport(Cfg(server.Url, "alice"));
            var def = new VideoTrackConfig();
            Log("  defaults: " + def);
            Assert(def.BitrateKbps == 1500 && def.Fps == 30 && def.KeyframeInterval == 3000 && def.Speed == VideoTrackConfig.SpeedDefault &&
                   def.Threads == 1, "defaults " + def);
            var bad = new Dictionary<string, Action<VideoTrackConfig>>
            {
                { "bitrate 10", x => x.BitrateKbps = 10 },
                { "bitrate 60000", x => x.BitrateKbps = 60000 },
                { "bitrate -1", x => x.BitrateKbps = -1 },
                { "fps 0", x => x.Fps = 0 },
                { "fps 121", x => x.Fps = 121 },
                { "speed 17", x => x.Speed = 17 },
                { "speed -17", x => x.Speed = -17 },
                { "threads 0", x => x.Threads = 0 },
                { "threads 17", x => x.Threads = 17 },
            };
            foreach (var kv in bad)
            {
                var cfg = new VideoTrackConfig();
                kv.Value(cfg);
                var e = Throws<RmwException>(() => alice.AddVideoTrack(TrackTarget.All, cfg), kv.Key);
                Equal(Status.InvalidArgument, e.Status, kv.Key);
            }
            Equal(Status.NotFound, Throws<RmwException>(() => alice.AddVideoTrack(TrackTarget.Peer("nobody")), "unknown peer").Status, "unknown peer");
            Equal(Status.NotFound, Throws<RmwException>(() => alice.AddVideoTrack(TrackTarget.Session("nowhere")), "unknown session").Status, "unknown session");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => alice.AddVideoTrack(new TrackTarget(TargetKind.Peer, null)), "peer without id").Status, "peer without id");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => alice.AddVideoTrack(new TrackTarget((TargetKind)9, null)), "bad kind").Status, "bad kind");
            Throws<ArgumentNullException>(() => alice.AddVideoTrack(null), "null target");

            var track = alice.AddVideoTrack(TrackTarget.None, new VideoTrackConfig { Speed = 8, KeyframeInterval = 0, Threads = 2 });
            Assert(track.Config.Speed == 8 && track.Config.Threads == 2, "config " + track.Config);
            const int w = 64, h = 48;
            var good = Pattern(w, h, 0);
            byte[] y = good.Planes[0], u = good.Planes[1], v = good.Planes[2];
            var badFrames = new Dictionary<string, Action>
            {
                { "width 0", () => track.Send(0, h, y, w, u, w / 2, v, w / 2) },
                { "height 0", () => track.Send(w, 0, y, w, u, w / 2, v, w / 2) },
                { "width -1", () => track.Send(-1, h, y, w, u, w / 2, v, w / 2) },
                { "short Y plane", () => track.Send(w, h, new byte[w * h - 1], w, u, w / 2, v, w / 2) },
                { "short V plane", () => track.Send(w, h, y, w, u, w / 2, new byte[10], w / 2) },
                { "empty U plane", () => track.Send(w, h, y, w, new byte[0], w / 2, v, w / 2) },
                { "Y stride below the width", () => track.Send(w, h, y, w - 1, u, w / 2, v, w / 2) },
                { "negative stride", () => track.Send(w, h, y, w, u, -32, v, w / 2) },
                { "I420 with one plane", () => track.Send(new RawVideoFrame(PixelFormat.I420, w, h, new[] { y })) },
                { "I420 with one stride", () => track.Send(new RawVideoFrame(PixelFormat.I420, w, h, new[] { y, u, v }, new[] { w })) },
                { "I420 through the one-plane overload", () => track.Send(PixelFormat.I420, w, h, y, w) },
                { "format 7", () => track.Send(new RawVideoFrame((PixelFormat)7, w, h, new[] { y, u, v })) },
                { "format -1", () => track.Send((PixelFormat)(-1), w, h, y, w) },
                { "RGBA plane shorter than 4 x width x height", () => track.Send(PixelFormat.Rgba, w, h, new byte[4 * w * h - 1], 4 * w) },
                { "BGRA stride below 4 x width", () => track.Send(PixelFormat.Bgra, w, h, new byte[4 * w * h], 3 * w) },
                { "NV12 UV plane short", () => track.SendNv12(w, h, y, w, new byte[w * h / 2 - 1], w) },
                { "RGBA from a NULL pointer", () => track.Send(PixelFormat.Rgba, w, h, IntPtr.Zero, 4 * w, 4 * w * h) },
                { "larger than the maximum size", () => track.Send(PixelFormat.Rgba, 1 << 20, 1, new byte[4 << 20], 4 << 20) },
            };
            foreach (var kv in badFrames)
            {
                var e = Throws<RmwException>(kv.Value, kv.Key);
                Equal(Status.InvalidArgument, e.Status, kv.Key);
            }
            Log("  e.g. " + Throws<RmwException>(badFrames["short Y plane"], "short Y plane").Message);
            Throws<ArgumentNullException>(() => track.Send(w, h, y, w, null, w / 2, v, w / 2), "null U plane");
            Throws<ArgumentNullException>(() => track.Send((RawVideoFrame)null), "null frame");
            Throws<ArgumentOutOfRangeException>(() => track.Send(PixelFormat.Rgba, w, h, IntPtr.Zero, 4 * w, -1), "negative byte count");

            track.Send(good);                                                                     // tight strides (null)
            track.Send(new RawVideoFrame(PixelFormat.I420, 33, 17, new[] { new byte[40 * 17], new byte[24 * 9], new byte[24 * 9] }, new[] { 40, 24, 24 }));
            track.SendNv12(33, 17, new byte[33 * 17], 33, new byte[34 * 9], 34);                  // odd size
            track.Send(new RawVideoFrame(PixelFormat.Nv12, 33, 17, new[] { new byte[33 * 17], new byte[34 * 9] })); // tight NV12
            track.Send(PixelFormat.Bgra, w, h, new byte[4 * w * h], 4 * w);
            Equal(Status.InvalidArgument, Throws<RmwException>(() => track.SetBitrate(10), "bitrate 10").Status, "SetBitrate(10)");
            Equal(Status.InvalidArgument, Throws<RmwException>(() => track.SetBitrate(-5), "bitrate -5").Status, "SetBitrate(-5)");
            track.SetBitrate(300);
            track.RequestKeyframe();
            Equal(Status.NotFound, Throws<RmwException>(() => track.SetTarget(TrackTarget.Peer("nobody")), "retarget").Status, "retarget to nobody");
            track.SetTarget(TrackTarget.All);
            var st = track.Stats;
            Equal((long)track.Id, st.Track, "stats track");
            Equal(5L, st.FramesIn, "frames_in");
            Equal(0, st.Peers, "peers");
            Equal(300, st.TargetBitrateKbps, "target bitrate");
            track.Dispose();
            track.Dispose();
            Throws<ObjectDisposedException>(() => track.Send(good), "Send after Dispose");
            Throws<ObjectDisposedException>(() => track.SetBitrate(500), "SetBitrate after Dispose");
            Throws<ObjectDisposedException>(() => track.RequestKeyframe(), "RequestKeyframe after Dispose");
            Throws<ObjectDisposedException>(() => track.SetTarget(TrackTarget.None), "SetTarget after Dispose");
            Throws<ObjectDisposedException>(() => { var s = track.Stats; }, "Stats after Dispose");

            VideoFrame f;
            Assert(!alice.TryPollVideo(0, out f) && f == null, "nothing to poll");
            var t0 = DateTime.UtcNow;
            Assert(alice.PollVideo(30) == null, "PollVideo(30) times out");
            Assert((DateTime.UtcNow - t0).TotalMilliseconds >= 25, "PollVideo waited");

            var badConfigs = new Dictionary<string, TransportConfig>
            {
                { "video_output_format yuv", new TransportConfig { IcePolicy = "loopback", VideoOutputFormat = "yuv" } },
                { "video_codec h264", new TransportConfig { IcePolicy = "loopback", VideoCodec = "h264" } },
                { "video_queue_capacity 0", new TransportConfig { IcePolicy = "loopback", VideoQueueCapacity = 0 } },
                { "video_max_delay_ms 1", new TransportConfig { IcePolicy = "loopback", VideoMaxDelayMs = 1 } },
                { "simulate_loss_percent 60", new TransportConfig { IcePolicy = "loopback", SimulateLossPercent = 60 } },
            };
            foreach (var kv in badConfigs)
                Equal(Status.Config, Throws<RmwException>(() => new Transport(kv.Value), kv.Key).Status, kv.Key);
            using (var blind = new Transport(new TransportConfig { SignalingUrl = server.Url, IcePolicy = "loopback", EnableVideo = false,
                VideoQueueCapacity = 2, VideoMaxDelayMs = 50, SimulateLossPercent = 10, VideoOutputFormat = "rgba", VideoCodec = "vp9" }))
                Equal(Status.InvalidArgument, Throws<RmwException>(() => blind.AddVideoTrack(TrackTarget.None), "video disabled").Status, "video disabled");

            // Disposing the transport frees its tracks and ends a blocked TryPollVideo.
            var orphan = alice.AddVideoTrack(TrackTarget.All);
            Exception pollEnd = null;
            var poller = new Thread(() => { try { VideoFrame x; alice.TryPollVideo(-1, out x); } catch (Exception e) { pollEnd = e; } });
            poller.Start();
            Thread.Sleep(100);
            alice.Dispose();
            Assert(poller.Join(2000), "TryPollVideo(-1) still blocked 2 s after Dispose");
            Assert(pollEnd is ObjectDisposedException, "TryPollVideo(-1) ended by Dispose: " + pollEnd);
            Throws<ObjectDisposedException>(() => orphan.Send(good), "Send after the transport's Dispose");
            orphan.Dispose();   // no error: freed with its transport
            Throws<ObjectDisposedException>(() => alice.AddVideoTrack(TrackTarget.None), "AddVideoTrack after Dispose");
            Throws<ObjectDisposedException>(() => alice.TryPollVideo(0, out f), "TryPollVideo after Dispose");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void AddAndDropVideoTrack(Transport t) { t.AddVideoTrack(TrackTarget.None); }

    static void TestVideoTrackFinalizer()
    {
        using (var server = SignalingServer.Start("127.0.0.1:0"))
        using (var alice = new Transport(Cfg(server.Url, "alice")))
        {
            AddAndDropVideoTrack(alice);
            Assert(!alice.StatsJson().Contains("\"video_tracks\":[]"), "one track: " + alice.StatsJson());
            for (int i = 0; i < 50 && !alice.StatsJson().Contains("\"video_tracks\":[]"); i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Thread.Sleep(20);
            }
            Assert(alice.StatsJson().Contains("\"video_tracks\":[]"), "the finalizer did not free the forgotten track: " + alice.StatsJson());
        }
    }

    static int Main()
    {
        var watchdog = new Thread(() =>
        {
            Thread.Sleep(240000);
            Log("FAIL watchdog: tests did not finish within 240 s");
            Log(passed + " passed, " + (failed + 1) + " failed");
            Environment.Exit(2);
        }) { IsBackground = true };
        watchdog.Start();

        if (Environment.GetEnvironmentVariable("RMW_LOG") != null)
            Rmw.SetLogHandler((lvl, target, msg) => Console.Error.WriteLine("[log " + lvl + " " + target + "] " + msg),
                int.Parse(Environment.GetEnvironmentVariable("RMW_LOG")));

        Run("version and ABI", TestVersion);
        Run("native struct layouts match the C header", TestNativeLayout);
        Run("config JSON and config error", TestConfigJson);
        Run("two peers: text, binary, sessions, channels, errors, double dispose", TestTwoPeers);
        Run("Dispose from an EventReceived handler", TestDisposeFromHandler);
        Run("audio: 440 Hz sine to bob, then to every peer; TrackAdded; stats; dispose", TestAudioSine);
        Run("audio: bad arguments, disposed track and transport", TestAudioErrors);
        Run("audio: queue full when sending far faster than real time", TestAudioQueueFull);
        Run("audio: the finalizer frees a forgotten track", TestAudioTrackFinalizer);
        Run("video: VP8 pattern in order, keyframe first, luma PSNR >= 30 dB; stats; newest 8 kept", () => TestVideoPattern("vp8"));
        Run("video: VP9 pattern in order, keyframe first, luma PSNR >= 30 dB; stats; newest 8 kept", () => TestVideoPattern("vp9"));
        Run("video: RGBA/BGRA input with padded stride, RGBA output colours", TestVideoRgba);
        Run("video: bad arguments, disposed track and transport", TestVideoErrors);
        Run("video: the finalizer frees a forgotten track", TestVideoTrackFinalizer);
        Run("finalizer frees leaked transports", TestFinalizer);
        Run("1000 transports: RSS and threads back near baseline", TestManyTransports);

        Log(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
