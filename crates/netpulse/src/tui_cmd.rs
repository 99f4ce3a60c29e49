//! `netpulse monitor --tui`: the terminal UI on a thread of its own, drawing the monitor's live
//! view four times a second and reading keys. The terminal is restored on exit and on panic
//! (ratatui's init installs the hook).

use crate::worker::Worker;
use netpulse_core::live::LiveHub;
use netpulse_tui::{draw, listed, Action, App};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The terminal UI.
pub struct Tui;

impl Tui {
    /// Takes over the terminal; `quit` is called once when the person asks to leave. Stopping
    /// the returned worker gives the terminal back.
    pub fn start(hub: Arc<LiveHub>, quit: impl Fn() + Send + 'static) -> std::io::Result<Worker> {
        Worker::spawn("tui", move |flag| {
            let mut terminal = ratatui::init();
            let mut app = App::default();
            let mut frozen = None;
            while !flag.load(Ordering::Relaxed) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                // The picture is rendered into the frame's buffer under the lock (memory only),
                // and written to the terminal after it is released: a terminal that stalls
                // (a paused ssh, a full pty) stalls only this thread, never the monitor or the
                // web, which take the same lock.
                let drawn = terminal.autoresize().map(|()| {
                    let live = hub.lock();
                    if app.paused && frozen.is_none() {
                        frozen = Some((live.clone(), now));
                    } else if !app.paused {
                        frozen = None;
                    }
                    let (view, at) = match &frozen {
                        Some((v, at)) => (v, *at),
                        None => (&*live, now),
                    };
                    let mut frame = terminal.get_frame();
                    draw(&mut frame, &app, view, at);
                    (listed(view).len(), view.ifaces.len())
                });
                let shown = drawn.and_then(|lists| terminal.apply_buffer().map(|_| lists));
                let (targets, ifaces) = match shown {
                    Ok(lists) => lists,
                    Err(e) => {
                        ratatui::restore();
                        eprintln!("netpulse: terminal UI: {e}");
                        quit();
                        return;
                    }
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
        })
    }
}
