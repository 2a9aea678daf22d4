// Ownership of library handles. Handles are 64-bit ids (never reused), not pointers, so
// System.Runtime.InteropServices.SafeHandle (IntPtr-sized: 32 bits on 32-bit platforms) does
// not fit; IdHandle gives the same guarantees: the id is freed exactly once (Interlocked),
// by Dispose or else by the finalizer (CriticalFinalizerObject: runs even on rude shutdowns
// and after ordinary finalizers). Freeing from the finalizer thread is safe: the library
// allows rmw_transport_free / rmw_signaling_server_stop from any thread, and a racing call
// that still uses the old id gets RMW_ERR_INVALID_HANDLE, never a crash.
using System;
using System.Runtime.ConstrainedExecution;
using System.Threading;

namespace RemoteMedia.WebRtc
{
    public abstract class IdHandle : CriticalFinalizerObject, IDisposable
    {
        long id;   // the ulong id, stored as long for Interlocked; 0 once released

        protected IdHandle(ulong id) { this.id = unchecked((long)id); }

        /// <summary>The raw id, or 0 once released.</summary>
        public ulong Id { get { return unchecked((ulong)Interlocked.Read(ref id)); } }

        public bool IsReleased { get { return Interlocked.Read(ref id) == 0; } }

        /// <summary>Frees the native object; returns its status (Ok when already released).</summary>
        public int Release()
        {
            long old = Interlocked.Exchange(ref id, 0);
            if (old == 0) return 0;
            return Free(unchecked((ulong)old));
        }

        protected abstract int Free(ulong id);

        public void Dispose()
        {
            Release();
            GC.SuppressFinalize(this);
        }

        ~IdHandle()
        {
            try { Release(); }
            catch { /* never throw from the finalizer thread (e.g. library not loadable) */ }
        }
    }

    /// <summary>Owns an rmw_transport_t: rmw_transport_free exactly once.</summary>
    public sealed class TransportHandle : IdHandle
    {
        static int finalizedCount;
        internal TransportHandle(ulong id) : base(id) { }

        /// <summary>How many transports were freed by the finalizer (leaked, not disposed).</summary>
        public static int FinalizedCount { get { return Volatile.Read(ref finalizedCount); } }

        protected override int Free(ulong id) { return Native.rmw_transport_free(id); }

        ~TransportHandle()
        {
            if (!IsReleased) Interlocked.Increment(ref finalizedCount);
            // the base finalizer frees the id
        }
    }

    /// <summary>Owns an rmw_audio_track_t: rmw_audio_track_free exactly once.</summary>
    public sealed class AudioTrackHandle : IdHandle
    {
        internal AudioTrackHandle(ulong id) : base(id) { }
        protected override int Free(ulong id) { return Native.rmw_audio_track_free(id); }
    }

    /// <summary>Owns an rmw_video_track_t: rmw_video_track_free exactly once.</summary>
    public sealed class VideoTrackHandle : IdHandle
    {
        internal VideoTrackHandle(ulong id) : base(id) { }
        protected override int Free(ulong id) { return Native.rmw_video_track_free(id); }
    }

    /// <summary>Owns an rmw_signaling_server_t: rmw_signaling_server_stop exactly once.</summary>
    public sealed class SignalingServerHandle : IdHandle
    {
        internal SignalingServerHandle(ulong id) : base(id) { }
        protected override int Free(ulong id) { return Native.rmw_signaling_server_stop(id); }
    }
}
