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
        Equal(IntPtr.Size == 8 ? 88 : 56, Marshal.SizeOf(typeof(NativeEventProbe)), "rmw_event_t size");
    }

    // Same layout as the binding's internal NativeEvent (checked for size only).
    [StructLayout(LayoutKind.Sequential)]
    struct NativeEventProbe
    {
        public int Kind; public ulong Transport; public IntPtr PeerId; public int PeerState; public ulong Channel;
        public IntPtr Label; public IntPtr Data; public UIntPtr Len; public byte Binary; public IntPtr Message; public IntPtr Internal;
    }

    static void TestConfigJson()
    {
        var c = new TransportConfig { SignalingUrl = "ws://127.0.0.1:1", PeerId = "a\"b\\c\n\u0001é", MaxPeers = 3, AutoAnswer = false,
            StunServers = new[] { "stun:x" } };
        c.RawFields["jitter_buffer_size_ms"] = "80";
        Equal("{\"signaling_url\":\"ws://127.0.0.1:1\",\"peer_id\":\"a\\\"b\\\\c\\n\\u0001é\",\"stun_servers\":[\"stun:x\"],\"max_peers\":3,\"auto_answer\":false,\"jitter_buffer_size_ms\":80}",
            c.ToJson(), "json");
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
        Run("config JSON and config error", TestConfigJson);
        Run("two peers: text, binary, sessions, channels, errors, double dispose", TestTwoPeers);
        Run("Dispose from an EventReceived handler", TestDisposeFromHandler);
        Run("finalizer frees leaked transports", TestFinalizer);
        Run("1000 transports: RSS and threads back near baseline", TestManyTransports);

        Log(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
