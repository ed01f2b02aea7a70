//! A recording trace: every event, in order, with the time it fired.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nettrace::{ConnectOutcome, DialId, Family, NetTrace, ResolveErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    DnsStart(String),
    /// Recorded, but left out of [`Recorder::events`] (see [`Recorder::all_events`]).
    DnsAnswer {
        host: String,
        family: Family,
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<ResolveErrorKind>,
    },
    DnsDone {
        host: String,
        addrs: Vec<IpAddr>,
        coalesced: bool,
        error: Option<ResolveErrorKind>,
    },
    ConnectStart(SocketAddr, usize),
    ConnectDone(SocketAddr, usize, Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    Failed(io::ErrorKind),
    Cancelled,
}

#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<(Duration, DialId, Event)>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn push(&self, dial: DialId, event: Event) {
        let at = self.start.elapsed();
        self.events.lock().unwrap().push((at, dial, event));
    }

    /// A trace that records into this recorder.
    pub fn trace(&self) -> NetTrace {
        self.extend(NetTrace::new())
    }

    /// `trace` with this recorder's hooks added after its own.
    pub fn extend(&self, trace: NetTrace) -> NetTrace {
        let (a, b, c, d, e) = (
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
            self.clone(),
        );
        trace
            .on_dns_start(move |ev| a.push(ev.dial, Event::DnsStart(ev.host.to_owned())))
            .on_dns_answer(move |ev| {
                e.push(
                    ev.dial,
                    Event::DnsAnswer {
                        host: ev.host.to_owned(),
                        family: ev.family,
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|err| err.kind()),
                    },
                )
            })
            .on_dns_done(move |ev| {
                b.push(
                    ev.dial,
                    Event::DnsDone {
                        host: ev.host.to_owned(),
                        addrs: ev.addrs.to_vec(),
                        coalesced: ev.coalesced,
                        error: ev.error.map(|err| err.kind()),
                    },
                )
            })
            .on_connect_start(move |ev| c.push(ev.dial, Event::ConnectStart(ev.addr, ev.attempt)))
            .on_connect_done(move |ev| {
                let outcome = match ev.outcome {
                    ConnectOutcome::Connected => Outcome::Connected,
                    ConnectOutcome::Failed(err) => Outcome::Failed(err.kind()),
                    ConnectOutcome::Cancelled => Outcome::Cancelled,
                    _ => unreachable!("new outcome"),
                };
                d.push(ev.dial, Event::ConnectDone(ev.addr, ev.attempt, outcome))
            })
    }

    /// Every event but the per-family `DnsAnswer`s, in order.
    pub fn events(&self) -> Vec<Event> {
        self.all_events()
            .into_iter()
            .filter(|e| !matches!(e, Event::DnsAnswer { .. }))
            .collect()
    }

    /// Every event, `DnsAnswer`s included, in order.
    pub fn all_events(&self) -> Vec<Event> {
        self.with_ids().into_iter().map(|(_, e)| e).collect()
    }

    /// Every event with the id of its dial, in order.
    pub fn with_ids(&self) -> Vec<(DialId, Event)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, dial, e)| (*dial, e.clone()))
            .collect()
    }

    pub fn timed(&self) -> Vec<(Duration, Event)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, e)| !matches!(e, Event::DnsAnswer { .. }))
            .map(|(t, _, e)| (*t, e.clone()))
            .collect()
    }

    /// When the first event matching `pred` fired (`DnsAnswer`s included).
    pub fn time_of(&self, pred: impl Fn(&Event) -> bool) -> Option<Duration> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, e)| pred(e))
            .map(|(t, _, _)| *t)
    }

    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.all_events().iter().filter(|e| pred(e)).count()
    }

    /// Every event of dial `dial`, `DnsAnswer`s included, in order.
    pub fn of_dial(&self, dial: DialId) -> Vec<Event> {
        self.with_ids()
            .into_iter()
            .filter(|(d, _)| *d == dial)
            .map(|(_, e)| e)
            .collect()
    }

    /// Asserts that each dial's events pair up exactly, dial by dial (by `DialId`):
    /// - at most one `DnsStart`, and as many `DnsDone`s, after it;
    /// - one `DnsAnswer` per family for each `DnsStart`, between it and the `DnsDone`;
    /// - every `ConnectStart` of attempt N has exactly one `ConnectDone` of attempt N
    ///   after it (same address), no `ConnectDone` lacks its start, attempts count 0, 1, …
    ///   in order;
    /// - in a dial with a lookup, every attempt's address came in a `DnsAnswer` of its
    ///   family before its `ConnectStart`.
    pub fn assert_pairs(&self) {
        let events = self.with_ids();
        let mut dials: Vec<DialId> = events.iter().map(|(d, _)| *d).collect();
        dials.sort();
        dials.dedup();
        for dial in dials {
            let mine: Vec<&Event> = events
                .iter()
                .filter(|(d, _)| *d == dial)
                .map(|(_, e)| e)
                .collect();
            let at = |pred: &dyn Fn(&Event) -> bool| -> Vec<usize> {
                (0..mine.len()).filter(|i| pred(mine[*i])).collect()
            };
            let starts = at(&|e| matches!(e, Event::DnsStart(_)));
            let dones = at(&|e| matches!(e, Event::DnsDone { .. }));
            assert!(
                starts.len() <= 1 && starts.len() == dones.len(),
                "dial {dial}: {} DnsStart, {} DnsDone: {mine:#?}",
                starts.len(),
                dones.len()
            );
            let answers = at(&|e| matches!(e, Event::DnsAnswer { .. }));
            assert_eq!(
                answers.len(),
                2 * starts.len(),
                "dial {dial}: DnsAnswers: {mine:#?}"
            );
            for family in [Family::Ipv6, Family::Ipv4] {
                let n = at(&|e| matches!(e, Event::DnsAnswer { family: f, .. } if *f == family));
                assert_eq!(
                    n.len(),
                    starts.len(),
                    "dial {dial}: DnsAnswers for {family:?}: {mine:#?}"
                );
            }
            if let (Some(&start), Some(&done)) = (starts.first(), dones.first()) {
                assert!(
                    start < done && answers.iter().all(|a| start < *a && *a < done),
                    "dial {dial}: DnsAnswers not between DnsStart and DnsDone: {mine:#?}"
                );
            }
            let mut next_attempt = 0;
            for (i, event) in mine.iter().enumerate() {
                match event {
                    Event::ConnectStart(addr, attempt) => {
                        assert_eq!(
                            *attempt, next_attempt,
                            "dial {dial}: attempts out of order: {mine:#?}"
                        );
                        next_attempt += 1;
                        let done =
                            |e: &&&Event| matches!(e, Event::ConnectDone(_, n, _) if n == attempt);
                        let after: Vec<&&Event> = mine[i + 1..].iter().filter(done).collect();
                        assert!(
                            after.len() == 1
                                && matches!(after[0], Event::ConnectDone(a, ..) if a == addr),
                            "dial {dial}: attempt {attempt} has {} ConnectDone after its start: \
                             {mine:#?}",
                            after.len()
                        );
                        let family = Family::of(addr.ip());
                        let answered = mine[..i].iter().any(|e| {
                            matches!(e, Event::DnsAnswer { family: f, addrs, .. }
                                if *f == family && addrs.contains(&addr.ip()))
                        });
                        assert!(
                            starts.is_empty() || answered,
                            "dial {dial}: attempt {attempt} to {addr} before its DnsAnswer: \
                             {mine:#?}"
                        );
                    }
                    Event::ConnectDone(_, attempt, _) => {
                        let started = mine[..i]
                            .iter()
                            .filter(|e| matches!(e, Event::ConnectStart(_, n) if n == attempt))
                            .count();
                        assert_eq!(
                            started, 1,
                            "dial {dial}: ConnectDone of attempt {attempt} without its start: \
                             {mine:#?}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Checks that `events` (as [`Recorder::with_ids`] gives them) pair up by dial: per dial,
/// one `DnsStart` first, one `DnsAnswer` per family after it, one `DnsDone` after both
/// (none of them when `looked_up` is false); attempts numbered 0..n, each with exactly one
/// `ConnectStart` and, after it, exactly one `ConnectDone` to the same address; at most one
/// `Connected`. Returns the number of attempts of each dial, in order of first event.
pub fn check_pairs(
    events: &[(DialId, Event)],
    looked_up: bool,
) -> Result<Vec<(DialId, usize)>, String> {
    let mut dials: Vec<DialId> = Vec::new();
    for (dial, _) in events {
        if !dials.contains(dial) {
            dials.push(*dial);
        }
    }
    let mut attempts = Vec::new();
    for dial in dials {
        let mine: Vec<&Event> = events
            .iter()
            .filter(|(d, _)| *d == dial)
            .map(|(_, e)| e)
            .collect();
        let fail = |what: &str| Err(format!("{dial}: {what}: {mine:?}"));
        let at = |pred: &dyn Fn(&Event) -> bool| -> Vec<usize> {
            (0..mine.len()).filter(|i| pred(mine[*i])).collect()
        };
        let dns_starts = at(&|e| matches!(e, Event::DnsStart(_)));
        let dns_dones = at(&|e| matches!(e, Event::DnsDone { .. }));
        let answers = |family: Family| {
            at(&move |e| matches!(e, Event::DnsAnswer { family: f, .. } if *f == family))
        };
        let (v6, v4) = (answers(Family::Ipv6), answers(Family::Ipv4));
        if looked_up {
            if dns_starts != [0] {
                return fail("one DnsStart, first");
            }
            if v6.len() != 1 || v4.len() != 1 {
                return fail("one DnsAnswer per family");
            }
            if dns_dones.len() != 1 || dns_dones[0] < v6[0].max(v4[0]) {
                return fail("one DnsDone, after both answers");
            }
        } else if !(dns_starts.is_empty() && dns_dones.is_empty() && v6.is_empty() && v4.is_empty())
        {
            return fail("no DNS events without a lookup");
        }
        let starts: Vec<(usize, SocketAddr, usize)> = mine
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::ConnectStart(addr, attempt) => Some((i, *addr, *attempt)),
                _ => None,
            })
            .collect();
        let dones: Vec<(usize, SocketAddr, usize, Outcome)> = mine
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::ConnectDone(addr, attempt, outcome) => Some((i, *addr, *attempt, *outcome)),
                _ => None,
            })
            .collect();
        if starts.len() != dones.len() {
            return fail("as many ConnectDone as ConnectStart");
        }
        for (n, (at_start, addr, attempt)) in starts.iter().enumerate() {
            if *attempt != n {
                return fail("attempts numbered 0..n in order");
            }
            if looked_up && *at_start < dns_starts[0] {
                return fail("attempts after DnsStart");
            }
            let ends: Vec<_> = dones.iter().filter(|d| d.2 == *attempt).collect();
            if ends.len() != 1 {
                return fail(&format!("attempt {attempt}: exactly one ConnectDone"));
            }
            if ends[0].0 < *at_start || ends[0].1 != *addr {
                return fail(&format!(
                    "attempt {attempt}: its done after its start, same address"
                ));
            }
        }
        let connected = dones.iter().filter(|d| d.3 == Outcome::Connected).count();
        if connected > 1 {
            return fail("at most one Connected");
        }
        attempts.push((dial, starts.len()));
    }
    Ok(attempts)
}
