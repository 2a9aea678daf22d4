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
        Run("finalizer frees leaked transports", TestFinalizer);
        Run("1000 transports: RSS and threads back near baseline", TestManyTransports);

        Log(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
