// Chat.cs: two peers, "alice" and "bob", chatting over WebRTC data channels on this machine.
// Alice polls events (TryPollEvent) on the main thread; bob gets them by EventReceived on his
// transport's background thread. Build and run: see ../README.md.
using System;
using System.Collections.Concurrent;
using System.Linq;
using RemoteMedia.WebRtc;

static class Chat
{
    static int Main()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        try
        {
            Console.WriteLine("remotemedia-webrtc " + Rmw.Version);
            using (var server = SignalingServer.Start("127.0.0.1:0"))
            using (var alice = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "alice", IcePolicy = "loopback" }))
            using (var bob = new Transport(new TransportConfig { SignalingUrl = server.Url, PeerId = "bob", IcePolicy = "loopback" }))
            {
                Console.WriteLine("signaling server on " + server.Url);
                var bobEvents = new BlockingCollection<RmwEvent>();
                bob.EventReceived += (sender, ev) =>
                {
                    if (ev.Kind == EventKind.DataChannelMessage)
                        Console.WriteLine(ev.Binary ? "bob got binary: " + BitConverter.ToString(ev.Data) : "bob got: " + ev.Text);
                    bobEvents.Add(ev);
                };

                Func<Func<RmwEvent, bool>, string, RmwEvent> aliceWait = (pred, what) =>
                {
                    RmwEvent ev;
                    while (DateTime.UtcNow < deadline)
                        if (alice.TryPollEvent(100, out ev))
                        {
                            if (ev.Kind == EventKind.Error) throw new Exception("alice: " + ev.Message);
                            if (ev.Kind == EventKind.DataChannelMessage) Console.WriteLine("alice got: " + ev.Text);
                            if (pred(ev)) return ev;
                        }
                    throw new TimeoutException("alice: waiting for " + what);
                };
                Func<Func<RmwEvent, bool>, string, RmwEvent> bobWait = (pred, what) =>
                {
                    RmwEvent ev;
                    while (bobEvents.TryTake(out ev, Math.Max(0, (int)(deadline - DateTime.UtcNow).TotalMilliseconds)))
                        if (pred(ev)) return ev;
                    throw new TimeoutException("bob: waiting for " + what);
                };

                aliceWait(e => e.Kind == EventKind.PeerDiscovered && e.PeerId == "bob", "bob to appear");
                alice.ConnectPeer("bob");
                aliceWait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "bob", "the channel to open");
                bobWait(e => e.Kind == EventKind.DataChannelOpen && e.PeerId == "alice", "the channel to open");

                alice.SendData("bob", "hello bob");
                bob.SendData("alice", "hello alice");
                alice.SendData("bob", new byte[] { 0x00, 0x01, 0xff, 0x00 });
                bobWait(e => e.Kind == EventKind.DataChannelMessage && !e.Binary, "alice's text");
                var bin = bobWait(e => e.Kind == EventKind.DataChannelMessage && e.Binary, "alice's bytes");
                if (!bin.Data.SequenceEqual(new byte[] { 0x00, 0x01, 0xff, 0x00 })) throw new Exception("binary corrupted");
                aliceWait(e => e.Kind == EventKind.DataChannelMessage && e.Text == "hello alice", "bob's text");
            }
            Console.WriteLine("chat: OK");
            return 0;
        }
        catch (RmwException e)
        {
            Console.Error.WriteLine("chat: FAILED: " + e.Status + ": " + e.Message);
            return 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("chat: FAILED: " + e.Message);
            return 1;
        }
    }
}
