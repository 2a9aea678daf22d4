// Transport, SignalingServer and DataChannel.
using System;
using System.Text;
using System.Threading;

namespace RemoteMedia.WebRtc
{
    /// <summary>The bundled signaling server, run in-process.</summary>
    public sealed class SignalingServer : IDisposable
    {
        readonly SignalingServerHandle handle;
        readonly string url;

        SignalingServer(ulong id)
        {
            handle = new SignalingServerHandle(id);
            url = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_signaling_server_url(id, b, ref l); });
        }

        /// <summary>Starts the server on bindAddr ("127.0.0.1:0" picks a free port).</summary>
        public static SignalingServer Start(string bindAddr = "127.0.0.1:0", int maxMessageBytes = 0)
        {
            if (maxMessageBytes < 0) throw new ArgumentOutOfRangeException("maxMessageBytes");
            ulong id;
            RmwException.Check(Native.rmw_signaling_server_start(Utf8.ToNative(bindAddr), new UIntPtr((uint)maxMessageBytes), out id));
            try { return new SignalingServer(id); }
            catch { Native.rmw_signaling_server_stop(id); throw; }
        }

        /// <summary>The ws://host:port URL clients use.</summary>
        public string Url { get { return url; } }

        public ulong Id { get { return handle.Id; } }

        public int Port
        {
            get
            {
                ushort p;
                RmwException.Check(Native.rmw_signaling_server_port(Live(), out p));
                GC.KeepAlive(this);
                return p;
            }
        }

        ulong Live()
        {
            ulong id = handle.Id;
            if (id == 0) throw new ObjectDisposedException("SignalingServer");
            return id;
        }

        /// <summary>Stops the server (joins its threads). Idempotent.</summary>
        public void Dispose() { RmwException.Check(handle.Release()); GC.SuppressFinalize(handle); }
    }

    /// <summary>Reliability of a data channel (W3C RTCDataChannelInit).</summary>
    public sealed class DataChannelOptions
    {
        public bool Ordered = true;
        /// <summary>-1: reliable; 0..65535: give up after that many retransmits.</summary>
        public int MaxRetransmits = -1;
        /// <summary>-1: unlimited; 0..65535: give up after that many milliseconds.</summary>
        public int MaxPacketLifetimeMs = -1;
    }

    /// <summary>
    /// A data channel. Owned by its transport: invalid once its DataChannelClose event was
    /// delivered or the transport disposed (calls then throw RmwException InvalidHandle).
    /// </summary>
    public sealed class DataChannel : IDisposable
    {
        readonly Transport transport;   // keeps the transport (and its handle) alive
        readonly ulong id;

        internal DataChannel(Transport transport, ulong id) { this.transport = transport; this.id = id; }

        public ulong Id { get { return id; } }
        public Transport Transport { get { return transport; } }

        public string Label
        {
            get
            {
                ulong ch = id;
                string s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_data_channel_label(ch, b, ref l); });
                GC.KeepAlive(transport);
                return s;
            }
        }

        /// <summary>Sends a binary message (at most Rmw.MaxMessageSize bytes). NotConnected before open.</summary>
        public void Send(byte[] data)
        {
            if (data == null) throw new ArgumentNullException("data");
            RmwException.Check(Native.rmw_data_channel_send(id, data, new UIntPtr((uint)data.Length), 1));
            GC.KeepAlive(transport);
        }

        /// <summary>Sends a text message (UTF-8).</summary>
        public void Send(string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            byte[] data = Encoding.UTF8.GetBytes(text);
            RmwException.Check(Native.rmw_data_channel_send(id, data, new UIntPtr((uint)data.Length), 0));
            GC.KeepAlive(transport);
        }

        /// <summary>Bytes queued for sending and not yet acknowledged.</summary>
        public ulong BufferedAmount
        {
            get
            {
                ulong v;
                RmwException.Check(Native.rmw_data_channel_buffered_amount(id, out v));
                GC.KeepAlive(transport);
                return v;
            }
        }

        /// <summary>DataChannelBufferedAmountLow fires when the buffered amount falls to threshold or below.</summary>
        public void SetBufferedAmountLowThreshold(ulong threshold)
        {
            RmwException.Check(Native.rmw_data_channel_set_buffered_amount_low_threshold(id, threshold));
            GC.KeepAlive(transport);
        }

        /// <summary>Closes the channel on both sides; DataChannelClose follows.</summary>
        public void Close()
        {
            RmwException.Check(Native.rmw_data_channel_close(id));
            GC.KeepAlive(transport);
        }

        /// <summary>Close, ignoring a channel that is already closed or a disposed transport.</summary>
        public void Dispose()
        {
            int st = Native.rmw_data_channel_close(id);
            if (st != 0 && st != (int)Status.InvalidHandle && st != (int)Status.Closed && st != (int)Status.NotFound)
                RmwException.Check(st);
        }
    }

    /// <summary>
    /// One identity on a signaling server and its peer connections. Dispose it (or let the
    /// finalizer free it). Receive events either with TryPollEvent or with EventReceived
    /// (raised on a background thread of this transport), not both.
    /// </summary>
    public sealed partial class Transport : IDisposable
    {
        readonly TransportHandle handle;
        readonly object sync = new object();
        EventHandler<RmwEvent> eventReceived;
        PumpState pump;

        /// <summary>Called when an EventReceived handler throws (default: written to stderr).</summary>
        public static Action<Exception> HandlerException;

        /// <summary>Creates a transport with the library's defaults.</summary>
        public Transport() : this((string)null) { }

        /// <summary>Creates a transport; it starts connecting to the signaling server.</summary>
        public Transport(TransportConfig config) : this(config == null ? null : config.ToJson()) { }

        Transport(string json)
        {
            ulong id;
            RmwException.Check(Native.rmw_transport_new(Utf8.ToNative(json), out id));
            handle = new TransportHandle(id);
        }

        /// <summary>Creates a transport from raw configuration JSON.</summary>
        public static Transport FromJson(string configJson) { return new Transport(configJson); }

        /// <summary>The raw rmw_transport_t id (0 once disposed).</summary>
        public ulong Id { get { return handle.Id; } }
        public bool IsDisposed { get { return handle.IsReleased; } }

        ulong Live()
        {
            ulong id = handle.Id;
            if (id == 0) throw new ObjectDisposedException("Transport");
            return id;
        }

        void Check(int status) { GC.KeepAlive(this); RmwException.Check(status); }

        /// <summary>Throws ObjectDisposedException for a status caused by Dispose (from another thread meanwhile), else checks it.</summary>
        void CheckLive(int status)
        {
            if ((status == (int)Status.Closed || status == (int)Status.InvalidHandle) && handle.IsReleased)
                throw new ObjectDisposedException("Transport");
            Check(status);
        }

        /// <summary>This transport's peer id (the one announced).</summary>
        public string PeerId
        {
            get
            {
                ulong id = Live();
                string s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_transport_peer_id(id, b, ref l); });
                GC.KeepAlive(this);
                return s;
            }
        }

        /// <summary>Offers a connection to peerId. NotFound: unknown peer; NotConnected: signaling not up yet.</summary>
        public void ConnectPeer(string peerId) { Check(Native.rmw_transport_connect_peer(Live(), Req(peerId, "peerId"))); }

        /// <summary>Answers the offer of a PeerOffer event (only with AutoAnswer = false).</summary>
        public void AcceptPeer(string peerId) { Check(Native.rmw_transport_accept_peer(Live(), Req(peerId, "peerId"))); }

        /// <summary>Closes the connection to peerId (or refuses its pending offer).</summary>
        public void DisconnectPeer(string peerId) { Check(Native.rmw_transport_disconnect_peer(Live(), Req(peerId, "peerId"))); }

        public PeerState GetPeerState(string peerId)
        {
            int s;
            Check(Native.rmw_transport_peer_state(Live(), Req(peerId, "peerId"), out s));
            return (PeerState)s;
        }

        public int PeerCount(bool connectedOnly = false)
        {
            UIntPtr n;
            Check(Native.rmw_transport_peer_count(Live(), (byte)(connectedOnly ? 1 : 0), out n));
            return (int)n.ToUInt64();
        }

        /// <summary>Peer connections as JSON: [{"peer_id":..,"state":..,"initiator":..,"channels":[..]}].</summary>
        public string ListPeersJson(bool connectedOnly = false)
        {
            ulong id = Live();
            byte c = (byte)(connectedOnly ? 1 : 0);
            string s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_transport_list_peers(id, c, b, ref l); });
            GC.KeepAlive(this);
            return s;
        }

        /// <summary>Counters as JSON (peers, channels, events pending / dropped).</summary>
        public string StatsJson()
        {
            ulong id = Live();
            string s = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_transport_stats_json(id, b, ref l); });
            GC.KeepAlive(this);
            return s;
        }

        /// <summary>Sends binary data on the default "data" channel of peerId, or of every connected peer when peerId is null. Returns how many peers it went to.</summary>
        public int SendData(string peerId, byte[] data) { return Send(peerId, data, true); }

        /// <summary>Sends text (UTF-8) on the default channel of peerId, or of every connected peer when null.</summary>
        public int SendData(string peerId, string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            return Send(peerId, Encoding.UTF8.GetBytes(text), false);
        }

        /// <summary>Sends data[offset..offset+count) (copied once when it is not the whole array).</summary>
        public int SendData(string peerId, byte[] data, int offset, int count, bool binary = true)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (offset < 0 || count < 0 || offset > data.Length - count) throw new ArgumentOutOfRangeException("count");
            if (offset != 0 || count != data.Length)
            {
                byte[] part = new byte[count];
                Buffer.BlockCopy(data, offset, part, 0, count);
                data = part;
            }
            return Send(peerId, data, binary);
        }

        int Send(string peerId, byte[] data, bool binary)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (data.Length > Native.MaxMessageSize)
                // The library drops an oversized rmw_transport_send_data / rmw_session_send_data
                // message with sent_to = 0 and RMW_OK; report it as rmw_data_channel_send does.
                throw new RmwException(Status.InvalidArgument, "message of " + data.Length +
                    " bytes exceeds the maximum of " + Native.MaxMessageSize);
            UIntPtr sent;
            Check(Native.rmw_transport_send_data(Live(), Utf8.ToNative(peerId), data, new UIntPtr((uint)data.Length),
                (byte)(binary ? 1 : 0), out sent));
            return (int)sent.ToUInt64();
        }

        /// <summary>Creates a data channel to peerId; usable after its DataChannelOpen event.</summary>
        public DataChannel CreateDataChannel(string peerId, string label, DataChannelOptions options = null)
        {
            var o = options ?? new DataChannelOptions();
            var n = new NativeDataChannelOptions
            {
                Ordered = (byte)(o.Ordered ? 1 : 0),
                MaxRetransmits = o.MaxRetransmits,
                MaxPacketLifetimeMs = o.MaxPacketLifetimeMs,
            };
            ulong ch;
            Check(Native.rmw_data_channel_create(Live(), Req(peerId, "peerId"), Req(label, "label"), ref n, out ch));
            return new DataChannel(this, ch);
        }

        /// <summary>Wraps a channel id from an event (e.g. a channel the remote opened).</summary>
        public DataChannel GetDataChannel(ulong channelId) { return new DataChannel(this, channelId); }

        // ---- sessions ----------------------------------------------------------------------

        public void CreateSession(string sessionId) { Check(Native.rmw_session_create(Live(), Req(sessionId, "sessionId"))); }
        public void RemoveSession(string sessionId) { Check(Native.rmw_session_remove(Live(), Req(sessionId, "sessionId"))); }
        public void AddPeerToSession(string sessionId, string peerId)
        {
            Check(Native.rmw_session_add_peer(Live(), Req(sessionId, "sessionId"), Req(peerId, "peerId")));
        }
        public void RemovePeerFromSession(string sessionId, string peerId)
        {
            Check(Native.rmw_session_remove_peer(Live(), Req(sessionId, "sessionId"), Req(peerId, "peerId")));
        }

        /// <summary>{"session_id":..,"peers":[..],"created_at_ms":..}</summary>
        public string GetSessionJson(string sessionId)
        {
            ulong id = Live();
            byte[] s = Req(sessionId, "sessionId");
            string r = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_session_get(id, s, b, ref l); });
            GC.KeepAlive(this);
            return r;
        }

        public string ListSessionsJson()
        {
            ulong id = Live();
            string r = Utf8.Query(delegate (byte[] b, ref UIntPtr l) { return Native.rmw_session_list(id, b, ref l); });
            GC.KeepAlive(this);
            return r;
        }

        /// <summary>Sends to every connected peer of the session; returns how many it went to.</summary>
        public int SendToSession(string sessionId, byte[] data) { return SessionSend(sessionId, data, true); }
        public int SendToSession(string sessionId, string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            return SessionSend(sessionId, Encoding.UTF8.GetBytes(text), false);
        }

        int SessionSend(string sessionId, byte[] data, bool binary)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (data.Length > Native.MaxMessageSize)
                // The library drops an oversized rmw_transport_send_data / rmw_session_send_data
                // message with sent_to = 0 and RMW_OK; report it as rmw_data_channel_send does.
                throw new RmwException(Status.InvalidArgument, "message of " + data.Length +
                    " bytes exceeds the maximum of " + Native.MaxMessageSize);
            UIntPtr sent;
            Check(Native.rmw_session_send_data(Live(), Req(sessionId, "sessionId"), data, new UIntPtr((uint)data.Length),
                (byte)(binary ? 1 : 0), out sent));
            return (int)sent.ToUInt64();
        }

        // ---- events ------------------------------------------------------------------------

        /// <summary>
        /// Waits up to timeoutMs (0: no wait; negative: until an event or Dispose) for the next
        /// event. The event is copied into managed memory and the native one released. Returns
        /// false on timeout. Throws ObjectDisposedException once disposed, InvalidOperationException
        /// while EventReceived has handlers.
        /// </summary>
        public bool TryPollEvent(int timeoutMs, out RmwEvent ev)
        {
            ev = null;
            ulong id = Live();
            if (Volatile.Read(ref pump) != null)
                throw new InvalidOperationException("events are delivered by EventReceived on this transport: do not poll too");
            var n = new NativeEvent();
            int st = Native.rmw_transport_poll_event(id, ref n, timeoutMs);
            if (st == (int)Status.Timeout) { GC.KeepAlive(this); return false; }
            if (st != 0)
            {
                if ((st == (int)Status.Closed || st == (int)Status.InvalidHandle) && handle.IsReleased)
                    throw new ObjectDisposedException("Transport");
                Check(st);
            }
            try { ev = RmwEvent.Copy(ref n); }
            finally { Native.rmw_event_release(ref n); }
            GC.KeepAlive(this);
            return true;
        }

        /// <summary>
        /// Raised for every event on a background thread of this transport (started by the
        /// first subscription, running until Dispose), one event at a time, in order. Any method
        /// may be called from a handler, Dispose included. Do not use TryPollEvent as well.
        /// </summary>
        public event EventHandler<RmwEvent> EventReceived
        {
            add
            {
                lock (sync)
                {
                    eventReceived += value;
                    if (pump == null && value != null)
                    {
                        ulong id = Live();
                        var p = new PumpState { Id = id, Owner = new WeakReference<Transport>(this) };
                        p.Thread = new Thread(PumpLoop) { IsBackground = true, Name = "rmw-events-" + id };
                        Volatile.Write(ref pump, p);
                        p.Thread.Start(p);
                    }
                }
            }
            remove { lock (sync) { eventReceived -= value; } }
        }

        sealed class PumpState
        {
            public ulong Id;
            public WeakReference<Transport> Owner;   // weak: the pump does not keep the transport alive
            public Thread Thread;
            public volatile bool Stop;
        }

        static void PumpLoop(object state)
        {
            var p = (PumpState)state;
            while (!p.Stop)
            {
                var n = new NativeEvent();
                int st = Native.rmw_transport_poll_event(p.Id, ref n, 250);
                if (st == (int)Status.Timeout) continue;
                if (st != 0) break;   // Closed / InvalidHandle: the transport was freed
                RmwEvent ev;
                try { ev = RmwEvent.Copy(ref n); }
                finally { Native.rmw_event_release(ref n); }
                Transport t;
                if (!p.Owner.TryGetTarget(out t)) break;   // collected: its finalizer frees the id
                t.Raise(ev);
            }
        }

        void Raise(RmwEvent ev)
        {
            EventHandler<RmwEvent> h;
            lock (sync) h = eventReceived;
            if (h == null) return;
            try { h(this, ev); }
            catch (Exception e)
            {
                var report = HandlerException;
                if (report != null) { try { report(e); } catch { } }
                else Console.Error.WriteLine("remotemedia-webrtc: EventReceived handler threw: " + e);
            }
        }

        /// <summary>
        /// Closes everything (rmw_transport_free, exactly once) and stops the event thread.
        /// Idempotent; safe from any thread, an EventReceived handler included.
        /// </summary>
        public void Dispose()
        {
            PumpState p;
            lock (sync) p = pump;
            if (p != null) p.Stop = true;
            int st = handle.Release();
            GC.SuppressFinalize(handle);
            if (p != null && p.Thread != Thread.CurrentThread) p.Thread.Join();
            RmwException.Check(st);
        }

        static byte[] Req(string s, string name)
        {
            if (s == null) throw new ArgumentNullException(name);
            return Utf8.ToNative(s);
        }
    }
}
