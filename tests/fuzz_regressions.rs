//! Inputs the fuzz targets (fuzz/) found, kept as plain tests so the fix stays fixed.

use valkit::{ConnectionConfig, ErrorKind};

/// `url` target, 2026-11-22: a huge duration parsed (about 3 billion years), but its
/// `Display` form (in milliseconds) had 20 digits, which the parser refuses, so the config
/// did not round-trip. Durations are now capped at 365 days.
#[test]
fn url_huge_duration_is_refused_and_accepted_ones_round_trip() {
    let err =
        ConnectionConfig::from_url("redis://h?read_timeout=1555515215155152.5552m").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("read_timeout"), "{err}");
    assert!(err.to_string().contains("365 days"), "{err}");

    for url in [
        "redis://h?read_timeout=525600m",
        "redis://h?read_timeout=31536000s",
        "redis://h?connect_timeout=31535999.999999999s",
    ] {
        let cfg = ConnectionConfig::from_url(url).unwrap();
        let again = ConnectionConfig::from_url(&cfg.to_string()).unwrap();
        assert_eq!(cfg, again, "{url} -> {cfg}");
    }
    assert!(ConnectionConfig::from_url("redis://h?read_timeout=525601m").is_err());
}
