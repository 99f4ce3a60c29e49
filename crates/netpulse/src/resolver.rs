//! The monitor's name resolution, off its main loop: a few threads ask getaddrinfo (which
//! blocks, sometimes for seconds) and hand each answer back. [`THREADS`] threads whatever the
//! number of targets; at most one request per target is ever queued (the caller asks again only
//! after an answer), so the queue is bounded by the targets.

use netpulse_probe::{resolve, Family};
use std::net::IpAddr;
use std::sync::{mpsc, Arc, Mutex};

/// Lookups at once: one slow name server does not hold up every other name.
pub const THREADS: usize = 4;

/// What became of one request.
#[derive(Debug)]
pub struct Answer {
    /// The target it was asked for.
    pub index: usize,
    /// The address, or why there is none.
    pub result: Result<IpAddr, String>,
}

/// Where answers go.
type AnswerSink = Arc<dyn Fn(Answer) -> bool + Send + Sync>;

/// Hands names to the resolver threads, started at the first name (a config of addresses
/// only has none).
pub struct Resolver {
    answer: AnswerSink,
    tx: Option<mpsc::Sender<(usize, String)>>,
}

impl Resolver {
    /// A resolver whose answers go to `answer` (which returns false once nobody listens,
    /// ending its threads).
    pub fn new(answer: impl Fn(Answer) -> bool + Send + Sync + 'static) -> Self {
        Self {
            answer: Arc::new(answer),
            tx: None,
        }
    }

    /// The threads, started.
    fn start(answer: &AnswerSink) -> std::io::Result<mpsc::Sender<(usize, String)>> {
        let (tx, rx) = mpsc::channel::<(usize, String)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..THREADS {
            let (rx, answer) = (Arc::clone(&rx), Arc::clone(answer));
            std::thread::Builder::new()
                .name("resolver".into())
                .spawn(move || loop {
                    // The lock is held only to take the next request, not during the lookup.
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((index, host)) = next else { break };
                    let result = resolve(&host, Family::Any).map_err(|e| e.to_string());
                    if !answer(Answer { index, result }) {
                        break;
                    }
                })?;
        }
        Ok(tx)
    }

    /// Asks for `host` on behalf of target `index`.
    pub fn ask(&mut self, index: usize, host: &str) {
        if self.tx.is_none() {
            match Self::start(&self.answer) {
                Ok(tx) => self.tx = Some(tx),
                Err(e) => {
                    (self.answer)(Answer {
                        index,
                        result: Err(format!("cannot start a resolver thread: {e}")),
                    });
                    return;
                }
            }
        }
        if let Some(tx) = &self.tx {
            // The threads only end when nobody listens to answers any more: nothing to do then.
            let _ = tx.send((index, host.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_for_names_and_failures() {
        let (tx, rx) = mpsc::channel();
        let mut r = Resolver::new(move |a| tx.send(a).is_ok());
        r.ask(7, "localhost");
        r.ask(8, "nosuch.invalid");
        let mut answers = [rx.recv().expect("an answer"), rx.recv().expect("an answer")];
        answers.sort_by_key(|a| a.index);
        let [a, b] = answers;
        assert_eq!(a.index, 7);
        assert!(a.result.is_ok_and(|ip| ip.is_loopback()));
        assert_eq!(b.index, 8);
        assert!(
            b.result.is_err_and(|e| e.contains("nosuch.invalid")),
            "names the host"
        );
    }
}
