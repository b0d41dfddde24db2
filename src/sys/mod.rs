//! The two places outside the C ABI where keyward must talk to the OS below std: the shared
//! memory-mapped sync file (atomics visible to every process) and fork detection
//! (`pthread_atfork`). Each `unsafe` block carries a `// SAFETY:` line.

pub(crate) mod fork;
pub(crate) mod mapped_file;
pub(crate) mod shared_memory;
