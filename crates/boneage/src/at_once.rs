//! Films read at once, each on a core of its own.
//!
//! The networks split one film's work over every core, yet a batch goes faster with
//! one film on each core: on 2 cores, `boneage preprocess` of the 1,145 labelled films
//! took 222.7 s of wall time one film after another and 144.9 s two at once, every
//! output file identical (2026-12-07; README, "Films read at once"). Likely the part
//! of a film's reading that the splitting does not shorten (the work between the
//! networks, their short coarse levels) is what the second film fills. [`each_at_once`]
//! reads `jobs` films at a time, each inside a rayon pool of one thread of its own, so
//! that what one film's networks split stays on its core and no film waits on
//! another's work.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// How many films to read at once by default: one a core (rayon's number of
/// threads, which `RAYON_NUM_THREADS` sets).
pub fn default_jobs() -> usize {
    rayon::current_num_threads().max(1)
}

/// The films to read at once: `asked` where given (at least one), else one a core
/// ([`default_jobs`]) on the CPU and one at a time on a GPU, whose work one film's
/// networks already fill and which this project has not measured with several.
pub fn jobs_for(asked: Option<usize>, device: crate::DeviceChoice) -> usize {
    match (asked, device) {
        (Some(n), _) => n.max(1),
        (None, crate::DeviceChoice::Cpu) => default_jobs(),
        (None, _) => 1,
    }
}

/// Runs `work` on every item of `items`, `jobs` at a time, and hands each result to
/// `each` on the calling thread, with the item's index, in the items' order — as a
/// plain loop would, whatever order the items finish in (a result that finishes
/// early waits for those before it), so that what `each` writes (a results file a
/// batch resumes from, a line of progress) comes in the list's order.
///
/// With one job (or one item) everything runs on the calling thread, as a plain loop.
/// With more, each job is a thread with a rayon pool of one thread of its own, inside
/// which `work` runs: rayon work that `work` starts stays on that job's core, and
/// thread-local state a reading keeps (the pipeline's memo of a film's network
/// answers) stays with its film. When `each` returns an error no further item is
/// started, and the error is returned once the items under way have finished.
pub fn each_at_once<T, R, E>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut each: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        for (i, item) in items.iter().enumerate() {
            each(i, work(item))?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (tx, next, stop, work) = (tx.clone(), &next, &stop, &work);
            scope.spawn(move || {
                let one_by_one = || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        if tx.send((i, work(item))).is_err() {
                            break;
                        }
                    }
                };
                // Without a pool of its own (no thread to be had), the job still
                // reads its films; their networks then share the global pool.
                match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(one_by_one),
                    Err(_) => one_by_one(),
                }
            });
        }
        drop(tx);
        // Results that finished before an earlier item's, by index.
        let mut waiting = BTreeMap::new();
        let mut due = 0;
        let mut outcome = Ok(());
        for (i, r) in rx {
            if outcome.is_err() {
                continue;
            }
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&due) {
                if let Err(e) = each(due, r) {
                    stop.store(true, Ordering::Relaxed);
                    outcome = Err(e);
                    break;
                }
                due += 1;
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_handed_over_once_and_in_order_whatever_the_jobs() {
        let items: Vec<u64> = (0..37).collect();
        for jobs in [1, 2, 3, 8, 100] {
            let mut got = Vec::new();
            each_at_once(
                &items,
                jobs,
                // Early items take longest, so that later ones finish first.
                |&v| {
                    std::thread::sleep(std::time::Duration::from_micros(200 * (37 - v)));
                    v * v
                },
                |i, r| {
                    got.push((i, r));
                    Ok::<_, ()>(())
                },
            )
            .unwrap();
            let want: Vec<(usize, u64)> = items.iter().map(|&v| (v as usize, v * v)).collect();
            assert_eq!(got, want, "{jobs} jobs");
        }
    }

    #[test]
    fn several_jobs_run_on_rayon_pools_of_one_thread() {
        let items: Vec<usize> = (0..10).collect();
        let mut threads = Vec::new();
        each_at_once(
            &items,
            3,
            |_| rayon::current_num_threads(),
            |_, n| {
                threads.push(n);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(threads, vec![1; items.len()]);
    }

    #[test]
    fn an_error_stops_new_items_and_is_returned() {
        let items: Vec<usize> = (0..1000).collect();
        let started = AtomicUsize::new(0);
        let err = each_at_once(
            &items,
            2,
            |&v| {
                started.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
                v
            },
            |_, v| {
                if v >= 3 {
                    Err(format!("item {v}"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err, "item 3");
        assert!(
            started.load(Ordering::Relaxed) < items.len(),
            "every item was started despite the error"
        );
    }
}
