//! Where the monitor's messages go: standard error — or, while the terminal UI runs, into it
//! (a line written to the terminal would scribble over the picture), held, and written to
//! standard error once the UI gives the terminal back, so nothing said is lost.

use std::sync::Mutex;

/// Messages held while the UI runs, at most; past this they are counted.
const HELD: usize = 1000;

struct Route {
    to_ui: Box<dyn Fn(&str) + Send>,
    held: Vec<String>,
    more: u64,
}

static ROUTE: Mutex<Option<Route>> = Mutex::new(None);

/// Says `text` where messages go now.
pub fn say_line(text: String) {
    let mut route = ROUTE.lock().unwrap_or_else(|e| e.into_inner());
    match route.as_mut() {
        Some(r) => {
            (r.to_ui)(&text);
            if r.held.len() < HELD {
                r.held.push(text);
            } else {
                r.more += 1;
            }
        }
        None => eprintln!("{text}"),
    }
}

/// From now on messages go to `ui` (and are held for standard error).
pub fn to_ui(ui: impl Fn(&str) + Send + 'static) {
    *ROUTE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Route {
        to_ui: Box::new(ui),
        held: Vec::new(),
        more: 0,
    });
}

/// Messages go to standard error again; those held while the UI ran are written there now.
pub fn to_stderr() {
    let route = ROUTE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(r) = route {
        for line in r.held {
            eprintln!("{line}");
        }
        if r.more > 0 {
            eprintln!("netpulse monitor: … and {} more messages", r.more);
        }
    }
}

/// `eprintln!` for the monitor's messages: see [`say_line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::say_line(format!($($arg)*))
    };
}
pub(crate) use say;
