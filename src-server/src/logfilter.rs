//! What a log may show: the filter every Lectern program builds from `LECTERN_LOG`. The WebSocket
//! library logs whole frames at trace level, join codes, resume tokens and teacher keys included, so
//! its crates are held at debug whatever is asked: secrets never reach a log at any level.

/// Crates whose trace output carries frames' contents.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// Levels from the quietest, as `tracing` names them (`0` to `5` are the same, by number).
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The verbosity a directive turns on (an index into [`LEVELS`]); a bare target means trace.
fn verbosity(directive: &str) -> usize {
    let level = match directive.rsplit_once('=') {
        Some((_, level)) => level.trim(),
        None if LEVELS.iter().any(|l| directive.trim().eq_ignore_ascii_case(l)) => directive.trim(),
        None if directive.trim().parse::<usize>().is_ok() => directive.trim(),
        None => return LEVELS.len() - 1, // `lectern` alone: everything of that target
    };
    level
        .parse::<usize>()
        .ok()
        .filter(|n| *n < LEVELS.len())
        .or_else(|| LEVELS.iter().position(|l| level.eq_ignore_ascii_case(l)))
        .unwrap_or(LEVELS.len() - 1)
}

/// The filter directives for `asked` (the value of `LECTERN_LOG`, or none for `info`). Directives
/// that name a frame logger (or a module of one), and span directives (`[span]=…`, which would reach
/// the frame loggers' events inside those spans), are dropped; the frame loggers are then capped at
/// the most verbose level asked, and never above debug (`tokio=trace` would otherwise reach
/// `tokio_tungstenite` by its prefix).
pub fn directives(asked: Option<&str>) -> String {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty()).unwrap_or("info");
    let names_frame_logger = |d: &&str| {
        let target = d.split(['=', '[']).next().unwrap_or_default().trim();
        FRAME_LOGGERS.iter().any(|c| target == *c || target.starts_with(&format!("{c}::")))
    };
    let kept: Vec<&str> = asked
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('[') && !names_frame_logger(d))
        .collect();
    let mut kept = kept;
    if kept.is_empty() {
        kept.push("info"); // everything asked was dropped: the default, not silence
    }
    let most = kept.iter().map(|d| verbosity(d)).max().unwrap_or(3);
    let cap = LEVELS[most.min(4)];
    let mut all: Vec<String> = kept.into_iter().map(str::to_string).collect();
    all.extend(FRAME_LOGGERS.map(|c| format!("{c}={cap}")));
    all.join(",")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn the_frame_loggers_are_held_at_debug_whatever_is_asked() {
        assert_eq!(directives(None), "info,tungstenite=info,tokio_tungstenite=info");
        assert_eq!(
            directives(Some("warn,tungstenite=trace")),
            "warn,tungstenite=warn,tokio_tungstenite=warn"
        );
        let asked =
            directives(Some("trace,tungstenite::protocol=trace,tokio_tungstenite=trace,lectern=debug"));
        assert_eq!(asked, "trace,lectern=debug,tungstenite=debug,tokio_tungstenite=debug");
        // A prefix of theirs, a number, a bare target, a span: none reaches trace for them.
        assert_eq!(directives(Some("tungstenite=trace")), "info,tungstenite=info,tokio_tungstenite=info");
        for sneaky in ["tokio=trace", "5", "tungstenite[frame]=trace", "[conn]=trace", "tokio"] {
            let d = directives(Some(sneaky));
            assert!(
                d.ends_with("tungstenite=debug,tokio_tungstenite=debug") || !d.contains("trace"),
                "{sneaky}: {d}"
            );
            assert!(!d.contains('['), "{sneaky}: {d}");
        }
    }
}
