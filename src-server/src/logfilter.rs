//! What a log may show: the filter every Lectern program builds from `LECTERN_LOG`. The WebSocket
//! library logs whole frames at trace level, join codes, resume tokens and teacher keys included, so
//! its crates are held at debug whatever is asked: secrets never reach a log at any level.

/// Crates whose trace output carries frames' contents.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// The filter directives for `asked` (the value of `LECTERN_LOG`, or none for `info`), with the
/// frame loggers held at debug: an asked directive that names them (or a module of theirs) is dropped,
/// so they follow the default level, and when that is `trace` they are capped at `debug` (below it,
/// they say no more than the default lets anything say).
pub fn directives(asked: Option<&str>) -> String {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty()).unwrap_or("info");
    let names_frame_logger = |d: &&str| {
        let target = d.split(['=', '[']).next().unwrap_or_default().trim();
        FRAME_LOGGERS.iter().any(|c| target == *c || target.starts_with(&format!("{c}::")))
    };
    let kept: Vec<&str> = asked.split(',').filter(|d| !names_frame_logger(d)).collect();
    let default_is_trace = kept.iter().any(|d| d.trim().eq_ignore_ascii_case("trace"));
    let mut all: Vec<String> = kept.into_iter().map(str::to_string).collect();
    if default_is_trace {
        all.extend(FRAME_LOGGERS.map(|c| format!("{c}=debug")));
    }
    all.join(",")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn the_frame_loggers_are_held_at_debug_whatever_is_asked() {
        assert_eq!(directives(None), "info", "below trace they follow the default level");
        assert_eq!(directives(Some("warn,tungstenite=trace")), "warn");
        let asked =
            directives(Some("trace,tungstenite::protocol=trace,tokio_tungstenite=trace,lectern=debug"));
        assert_eq!(asked, "trace,lectern=debug,tungstenite=debug,tokio_tungstenite=debug");
        assert!(!directives(Some("tungstenite[frame]=trace")).contains("trace"));
    }
}
