//! Runs an application handler over a `BoundedQueue` on a thread of its own, for events and
//! for received media frames alike. A slow handler therefore never stalls a runtime worker,
//! and the queue's drop-oldest policy decides what a handler that falls behind misses.

use crate::error::{Error, Result};
use crate::events::{BoundedQueue, Pop};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub type Handler<T> = Box<dyn FnMut(T) + Send>;

/// The application's handler and the thread that runs it.
pub(crate) struct Dispatch<T> {
    name: &'static str,
    handler: Mutex<Option<Arc<Mutex<Handler<T>>>>>,
    changed: Condvar,
    /// Held by the thread from taking an item until its handler returns, so that clearing or
    /// replacing the handler can wait for a call in progress.
    busy: Mutex<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> Dispatch<T> {
    pub fn new(name: &'static str) -> Self {
        Dispatch { name, handler: Mutex::new(None), changed: Condvar::new(), busy: Mutex::new(()), thread: Mutex::new(None) }
    }

    fn on_own_thread(&self) -> bool {
        self.thread.lock().unwrap().as_ref().is_some_and(|t| t.thread().id() == std::thread::current().id())
    }

    /// Installs (`Some`) or removes (`None`) the handler; the thread starts on first use.
    /// Without a handler, items stay queued for polling. Unless called from inside the
    /// handler, returns after a call in progress has finished, so the old handler is not
    /// called afterwards.
    pub fn set(self: &Arc<Self>, queue: &Arc<BoundedQueue<T>>, handler: Option<Handler<T>>) -> Result<()> {
        let enable = handler.is_some();
        *self.handler.lock().unwrap() = handler.map(|h| Arc::new(Mutex::new(h)));
        self.changed.notify_all();
        if !self.on_own_thread() {
            drop(self.busy.lock().unwrap());
        }
        let mut thread = self.thread.lock().unwrap();
        if enable && thread.is_none() {
            let (queue, me) = (queue.clone(), self.clone());
            *thread = Some(
                std::thread::Builder::new()
                    .name(self.name.into())
                    .spawn(move || me.run(queue))
                    .map_err(|e| Error::Io(format!("spawn {} thread: {e}", self.name)))?,
            );
        }
        Ok(())
    }

    /// Drops the handler and joins the thread (the queue must be closed first). From inside
    /// the handler it returns at once: that call is the last one.
    pub fn stop(&self) {
        *self.handler.lock().unwrap() = None;
        self.changed.notify_all();
        let thread = self.thread.lock().unwrap().take();
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }

    fn run(&self, queue: Arc<BoundedQueue<T>>) {
        loop {
            // Take nothing while no handler is set: the application is polling.
            {
                let mut h = self.handler.lock().unwrap();
                while h.is_none() {
                    if queue.is_closed() {
                        return;
                    }
                    h = self.changed.wait_timeout(h, Duration::from_millis(50)).unwrap().0;
                }
            }
            let _busy = self.busy.lock().unwrap();
            // Clone the handler out so the handler itself may replace it or close the transport.
            let Some(h) = self.handler.lock().unwrap().clone() else { continue };
            match queue.pop(Some(Duration::from_millis(20))) {
                Pop::Closed => return,
                Pop::Timeout => continue,
                Pop::Event(item) => (h.lock().unwrap())(item),
            }
        }
    }
}
