//! kwtool: the Rust side of benches/http/run.sh.
//!
//!   kwtool create STORE N KEYFILE   create N keys (owner acct_<i % 1000>, scope "read") in
//!                                   bulk transactions; write the full keys, one a line, to
//!                                   KEYFILE (mode 0600, must not exist). Prints only the count.
//!   kwtool uses STORE               print "<uses> <refused>": the sums over every key of the
//!                                   usage the store holds (what the workers have flushed).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use keyward::{NewKey, Store, StoreOptions};

fn create(path: &str, n: usize, keyfile: &str) -> Result<(), Box<dyn std::error::Error>> {
    const CHUNK: usize = 20_000; // one write transaction per chunk
    let store = Store::open(path, StoreOptions::default())?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(keyfile)?;
    let mut out = BufWriter::new(file);
    let mut done = 0;
    while done < n {
        let batch: Vec<NewKey> = (done..n.min(done + CHUNK))
            .map(|i| NewKey {
                owner: format!("acct_{}", i % 1000),
                name: format!("http bench key {i}"),
                scopes: vec!["read".into()],
                env: Some("live".into()),
                ..NewKey::default()
            })
            .collect();
        for created in store.create_many(batch)? {
            writeln!(out, "{}", created.key())?;
            done += 1;
        }
    }
    out.flush()?;
    store.close()?;
    println!("{done}");
    Ok(())
}

fn uses(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(path, StoreOptions::default())?;
    let (mut uses, mut refused) = (0u64, 0u64);
    for info in store.all_keys()? {
        let usage = store.usage(&info.id)?;
        uses += usage.uses;
        refused += usage.refused;
    }
    store.close()?;
    println!("{uses} {refused}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create", path, n, keyfile] => match n.parse() {
            Ok(n) => create(path, n, keyfile),
            Err(e) => Err(format!("bad key count {n:?}: {e}").into()),
        },
        ["uses", path] => uses(path),
        _ => Err("usage: kwtool create STORE N KEYFILE | kwtool uses STORE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kwtool: {e}");
            ExitCode::FAILURE
        }
    }
}
