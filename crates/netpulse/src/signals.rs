//! Ctrl-C as every command has it: the first SIGINT/SIGTERM asks for a graceful stop, a second
//! exits at once (status 130). SIGHUP, where a command wants it, asks for a reload.

use anyhow::Context;

/// Starts the signal thread: `on_stop` runs on the first SIGINT/SIGTERM, `on_hup` (if given)
/// on every SIGHUP; a second SIGINT/SIGTERM exits with 130.
pub fn install(
    mut on_stop: impl FnMut() + Send + 'static,
    mut on_hup: Option<Box<dyn FnMut() + Send>>,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut wanted = vec![SIGINT, SIGTERM];
    if on_hup.is_some() {
        wanted.push(SIGHUP);
    }
    let mut signals =
        signal_hook::iterator::Signals::new(&wanted).context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut stops = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    if let Some(f) = on_hup.as_mut() {
                        f();
                    }
                    continue;
                }
                stops += 1;
                if stops == 1 {
                    on_stop();
                } else {
                    std::process::exit(130);
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}
