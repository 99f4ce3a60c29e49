//! `netpulse monitor --tui`: the terminal UI on a thread of its own, drawing the monitor's live
//! view four times a second and reading keys. The terminal is restored on exit and on panic
//! (ratatui's init installs the hook).

use netpulse_tui::{draw, listed, Action, App};
use netpulse_web::Shared;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The running UI.
pub struct Tui {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tui {
    /// Takes over the terminal; `quit` is called once when the person asks to leave.
    pub fn start(shared: Arc<Shared>, quit: impl Fn() + Send + 'static) -> std::io::Result<Tui> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tui".into())
            .spawn(move || {
                let mut terminal = ratatui::init();
                let mut app = App::default();
                let mut frozen = None;
                while !flag.load(Ordering::Relaxed) {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    let (targets, ifaces) = {
                        let live = shared.live();
                        if app.paused && frozen.is_none() {
                            frozen = Some((live.clone(), now));
                        } else if !app.paused {
                            frozen = None;
                        }
                        let (view, at) = match &frozen {
                            Some((v, at)) => (v, *at),
                            None => (&*live, now),
                        };
                        if let Err(e) = terminal.draw(|f| draw(f, &app, view, at)) {
                            ratatui::restore();
                            eprintln!("netpulse: terminal UI: {e}");
                            quit();
                            return;
                        }
                        (listed(view).len(), view.ifaces.len())
                    };
                    // Keys, or a redraw every 250 ms.
                    match event::poll(Duration::from_millis(250)) {
                        Ok(true) => match event::read() {
                            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                                if app.key(k, targets, ifaces) == Action::Quit {
                                    quit();
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        },
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
                ratatui::restore();
            })?;
        Ok(Tui {
            stop,
            thread: Some(thread),
        })
    }

    /// Gives the terminal back (the monitor is stopping).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.shutdown();
    }
}
