//! The sync thread: `fdatasync` of the open segment, beside the writer thread, so that the
//! writer serializes and writes the next batch while the device flushes the previous ones.
//!
//! The writer asks for a sync after it has written a batch ([`Syncer::request`]); a request
//! names the segment's file and the last LSN written to it. The sync thread syncs the newest
//! request it holds, so requests made while one sync runs are covered by the next one (group
//! commit at the device as well as at the write). A sync covers every byte written before it
//! began, so once it returns, every LSN of its request is on the device.
//!
//! A failed sync is never retried (see the writer's module): the thread records the error and
//! stops, and every later request or wait fails with it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::error::JournalError;
use super::format::Lsn;
use super::writer::SyncFault;

/// One sync to make: the segment's file, its path (for errors), and the last LSN written to it.
struct Request {
    file: Arc<File>,
    path: PathBuf,
    lsn: Lsn,
}

#[derive(Default)]
struct State {
    /// The newest sync asked for and not begun.
    pending: Option<Request>,
    /// Every LSN up to this one is on the device.
    synced: Lsn,
    /// The error that stopped the thread.
    failed: Option<JournalError>,
    /// The writer is done: sync what is pending and end.
    closing: bool,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the sync thread calls after each sync that advanced the watermark, or with the error
/// that stopped it.
pub(crate) type SyncedCallback = Box<dyn Fn(Result<Lsn, &JournalError>) + Send>;

/// The writer's handle on the sync thread.
pub(crate) struct Syncer {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread with everything up to `synced` already on the device.
    pub(crate) fn start(
        synced: Lsn,
        fault: Option<SyncFault>,
        on_synced: SyncedCallback,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                synced,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        let shared = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("journal-sync".to_owned())
            .spawn(move || run(&shared, fault.as_ref(), &on_synced))?;
        Ok(Self {
            inner,
            thread: Some(thread),
        })
    }

    /// Asks for a sync of `file` through `lsn`, without waiting; fails if a sync failed.
    pub(crate) fn request(
        &self,
        file: &Arc<File>,
        path: &std::path::Path,
        lsn: Lsn,
    ) -> Result<(), JournalError> {
        let mut state = self.inner.lock();
        if let Some(error) = &state.failed {
            return Err(error.clone());
        }
        if lsn > state.synced && state.pending.as_ref().is_none_or(|p| p.lsn < lsn) {
            state.pending = Some(Request {
                file: Arc::clone(file),
                path: path.to_path_buf(),
                lsn,
            });
            self.inner.changed.notify_all();
        }
        Ok(())
    }

    /// Syncs `file` through `lsn` and waits until it is on the device.
    pub(crate) fn sync(
        &self,
        file: &Arc<File>,
        path: &std::path::Path,
        lsn: Lsn,
    ) -> Result<(), JournalError> {
        self.request(file, path, lsn)?;
        let mut state = self.inner.lock();
        loop {
            if let Some(error) = &state.failed {
                return Err(error.clone());
            }
            if state.synced >= lsn {
                return Ok(());
            }
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The error that stopped the thread, if one did.
    pub(crate) fn failed(&self) -> Option<JournalError> {
        self.inner.lock().failed.clone()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.inner.lock().closing = true;
        self.inner.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(inner: &Inner, fault: Option<&SyncFault>, on_synced: &SyncedCallback) {
    loop {
        let request = {
            let mut state = inner.lock();
            loop {
                if let Some(request) = state.pending.take() {
                    break request;
                }
                if state.closing {
                    return;
                }
                state = inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let outcome = fault
            .map_or(Ok(()), |fault| fault.check(&request.path))
            .and_then(|()| request.file.sync_data())
            .map_err(|e| JournalError::io("sync", &request.path, e));
        let mut state = inner.lock();
        match outcome {
            Ok(()) => {
                state.synced = state.synced.max(request.lsn);
                let synced = state.synced;
                drop(state);
                inner.changed.notify_all();
                on_synced(Ok(synced));
            }
            Err(error) => {
                state.failed = Some(error.clone());
                state.pending = None;
                drop(state);
                inner.changed.notify_all();
                on_synced(Err(&error));
                return;
            }
        }
    }
}
