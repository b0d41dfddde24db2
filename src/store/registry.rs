//! The process-wide store registry: opening a path this process already has open returns the
//! same store, so hosts whose objects die with each request (PHP) keep one warm verify index
//! per worker. A hit on the path as given costs one mutex and one hash lookup, no system call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, Weak};

use crate::locks::Mutex;

use super::open::StoreOptions;
use super::{Handle, Store};
use crate::error::Result;
use crate::sys::fork;

static REGISTRY: Mutex<Option<HashMap<PathBuf, Weak<Handle>>>> = Mutex::new(None);
static HOLD_ACROSS_FORK: Once = Once::new();

/// Taken around `fork()`, so a child never inherits the registry locked by a thread that
/// does not exist in the child.
extern "C" fn lock_registry_for_fork() {
    fork::keep_until_forked(Box::new(REGISTRY.lock()));
}

/// Opens through the registry (see [`Store::open`]).
pub(super) fn open(path: &Path, options: StoreOptions) -> Result<Store> {
    HOLD_ACROSS_FORK.call_once(|| fork::hold_across_fork(lock_registry_for_fork));
    let mut guard = REGISTRY.lock();
    let registry = guard.get_or_insert_with(HashMap::new);
    if let Some(handle) = registry.get(path).and_then(Weak::upgrade) {
        handle.options.compatible_with(&options)?;
        return Ok(Store {
            handle,
            actor: None,
        });
    }
    let canonical = canonical_path(path);
    if let Some(handle) = registry.get(&canonical).and_then(Weak::upgrade) {
        handle.options.compatible_with(&options)?;
        registry.insert(path.to_owned(), Arc::downgrade(&handle));
        return Ok(Store {
            handle,
            actor: None,
        });
    }
    registry.retain(|_, weak| weak.strong_count() > 0);
    let store = Store::open_unshared(&canonical, options)?;
    registry.insert(canonical, Arc::downgrade(&store.handle));
    registry.insert(path.to_owned(), Arc::downgrade(&store.handle));
    Ok(store)
}

/// The absolute, symlink-free path of a database that may not exist yet.
fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}
