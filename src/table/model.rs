//! An exhaustive interleaving test of the slot protocol (the acceptance's "model test"): the
//! word operations of one writer changing a slot (`mark_in_doubt`, `fill_slot`, the commit,
//! `settle`), killed after any of them and then repaired the way `catch_up` does (fill from
//! the committed state, settle), against a reader doing exactly what `read_slot` and the
//! verify path do (load seq; spin while odd; load the other words; load seq again; retry on
//! a change; after the spins, answer from redb). Every interleaving of every crash point is
//! run (sequentially consistent steps: the model checks the protocol's logic; the memory
//! orderings are the standard seqlock ones, documented in `table`).
//!
//! Checked for every execution: the reader never returns a torn slot (words of two versions);
//! whatever it returns was redb's committed state at some instant during the read; and a
//! read that starts after the writer's change returned sees the change.

use std::collections::BTreeSet;

const OLD: u64 = 1;
const NEW: u64 = 2;
/// Reader spins before it calls the slot in doubt (the real code spins 128 times; two are
/// enough to reach every branch).
const SPINS: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum WriterStep {
    Mark,
    FillTag,
    FillRef,
    Commit,
    Settle,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RepairStep {
    Idle,
    FillTag,
    FillRef,
    Settle,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ReaderStep {
    NotStarted,
    LoadSeq,
    LoadTag,
    LoadRef,
    Recheck,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct State {
    seq: u64,
    tag: u64,
    record: u64,
    committed: u64,
    writer: WriterStep,
    /// The writer dies before this step (`Done` = it never dies).
    dies_before: WriterStep,
    repair: RepairStep,
    reader: ReaderStep,
    spins: u8,
    first_seq: u64,
    read_tag: u64,
    read_record: u64,
    /// Whether the reader started after the writer's change returned.
    started_after_return: bool,
    /// Committed versions seen while the reader ran (bit per version).
    committed_during_read: u8,
    answer: Option<(bool, u64)>,
}

fn explore(state: State, seen: &mut BTreeSet<State>, outcomes: &mut [u64; 4]) {
    if !seen.insert(state) {
        return;
    }
    let mut moved = false;
    // Writer.
    if state.writer != WriterStep::Done && state.writer != state.dies_before {
        let mut next = state;
        match state.writer {
            WriterStep::Mark => {
                if next.seq & 1 == 0 {
                    next.seq += 1;
                }
                next.writer = WriterStep::FillTag;
            }
            WriterStep::FillTag => {
                next.tag = NEW;
                next.writer = WriterStep::FillRef;
            }
            WriterStep::FillRef => {
                next.record = NEW;
                next.writer = WriterStep::Commit;
            }
            WriterStep::Commit => {
                next.committed = NEW;
                next.writer = WriterStep::Settle;
            }
            WriterStep::Settle => {
                if next.seq & 1 == 1 {
                    next.seq += 1;
                }
                next.writer = WriterStep::Done;
            }
            WriterStep::Done => unreachable!(),
        }
        note_commit(&mut next);
        explore(next, seen, outcomes);
        moved = true;
    }
    // The next writer repairs once the dead one's lease is free.
    let writer_dead = state.writer == state.dies_before && state.writer != WriterStep::Done;
    if writer_dead && state.repair != RepairStep::Done {
        let mut next = state;
        match state.repair {
            RepairStep::Idle => next.repair = RepairStep::FillTag,
            RepairStep::FillTag => {
                // catch_up repairs only slots still in doubt.
                if next.seq & 1 == 1 {
                    next.tag = next.committed;
                }
                next.repair = RepairStep::FillRef;
            }
            RepairStep::FillRef => {
                if next.seq & 1 == 1 {
                    next.record = next.committed;
                }
                next.repair = RepairStep::Settle;
            }
            RepairStep::Settle => {
                if next.seq & 1 == 1 {
                    next.seq += 1;
                }
                next.repair = RepairStep::Done;
            }
            RepairStep::Done => unreachable!(),
        }
        explore(next, seen, outcomes);
        moved = true;
    }
    // Reader.
    if state.reader != ReaderStep::Done {
        let mut next = state;
        match state.reader {
            ReaderStep::NotStarted => {
                next.started_after_return = state.writer == WriterStep::Done;
                next.committed_during_read = 1 << state.committed;
                next.reader = ReaderStep::LoadSeq;
            }
            ReaderStep::LoadSeq => {
                if state.seq & 1 == 1 {
                    if state.spins + 1 >= SPINS {
                        // In doubt: answered from redb.
                        next.answer = Some((false, state.committed));
                        next.reader = ReaderStep::Done;
                    } else {
                        next.spins += 1;
                    }
                } else {
                    next.first_seq = state.seq;
                    next.reader = ReaderStep::LoadTag;
                }
            }
            ReaderStep::LoadTag => {
                next.read_tag = state.tag;
                next.reader = ReaderStep::LoadRef;
            }
            ReaderStep::LoadRef => {
                next.read_record = state.record;
                next.reader = ReaderStep::Recheck;
            }
            ReaderStep::Recheck => {
                if state.seq == state.first_seq {
                    assert_eq!(
                        state.read_tag, state.read_record,
                        "torn read accepted: {state:?}"
                    );
                    next.answer = Some((true, state.read_record));
                    next.reader = ReaderStep::Done;
                } else if state.spins + 1 >= SPINS {
                    next.answer = Some((false, state.committed));
                    next.reader = ReaderStep::Done;
                } else {
                    next.spins += 1;
                    next.reader = ReaderStep::LoadSeq;
                }
            }
            ReaderStep::Done => unreachable!(),
        }
        explore(next, seen, outcomes);
        moved = true;
    }
    if !moved {
        let (from_table, version) = state.answer.expect("the reader always answers");
        assert!(
            state.committed_during_read & (1 << version) != 0,
            "answered version {version}, never committed while the read ran: {state:?}"
        );
        if state.started_after_return {
            assert_eq!(
                version, NEW,
                "a read after the change returned missed it: {state:?}"
            );
        }
        outcomes[usize::from(from_table) * 2 + usize::from(version == NEW)] += 1;
    }
}

fn note_commit(state: &mut State) {
    if matches!(state.reader, ReaderStep::NotStarted | ReaderStep::Done) {
        return;
    }
    state.committed_during_read |= 1 << state.committed;
}

#[test]
fn every_interleaving_of_a_writer_killed_anywhere_and_a_reader_is_safe() {
    let mut outcomes = [0u64; 4];
    let mut states = 0;
    for dies_before in [
        WriterStep::Mark,
        WriterStep::FillTag,
        WriterStep::FillRef,
        WriterStep::Commit,
        WriterStep::Settle,
        WriterStep::Done,
    ] {
        let start = State {
            seq: 2,
            tag: OLD,
            record: OLD,
            committed: OLD,
            writer: WriterStep::Mark,
            dies_before,
            repair: RepairStep::Idle,
            reader: ReaderStep::NotStarted,
            spins: 0,
            first_seq: 0,
            read_tag: 0,
            read_record: 0,
            started_after_return: false,
            committed_during_read: 0,
            answer: None,
        };
        let mut seen = BTreeSet::new();
        explore(start, &mut seen, &mut outcomes);
        states += seen.len();
    }
    // Every kind of answer was reached: from the table and from redb, old and new.
    let [redb_old, redb_new, table_old, table_new] = outcomes;
    assert!(
        redb_old > 0 && redb_new > 0 && table_old > 0 && table_new > 0,
        "outcomes {outcomes:?}"
    );
    assert!(states > 500, "explored only {states} states");
}
