use std::time::Duration;

use super::decision::{Decision, Outcome};
use super::memo::Memo;
use super::{Algorithm, Limiter};
use crate::resp::Value;
use crate::ErrorKind;

fn reply(items: &[i64]) -> Value {
    Value::Array(items.iter().map(|&i| Value::Int(i)).collect())
}

#[test]
fn decision_from_reply_and_headers() {
    let d = Decision::from_reply(reply(&[1, 100, 0, 2_500_000, 1_000_001])).unwrap();
    assert!(!d.allowed);
    assert_eq!(d.outcome, Outcome::Limited);
    assert_eq!(d.retry_after, Some(Duration::from_micros(1_000_001)));
    assert_eq!(
        d.headers(),
        vec![
            ("RateLimit-Limit", "100".to_owned()),
            ("RateLimit-Remaining", "0".to_owned()),
            ("RateLimit-Reset", "3".to_owned()),
            ("Retry-After", "2".to_owned()),
        ]
    );
    assert_eq!(d.throttle_reply(), [1, 100, 0, 2, 3]);

    let ok = Decision::from_reply(reply(&[0, 10, 9, 6_000_000, -1])).unwrap();
    assert!(ok.allowed);
    assert_eq!(ok.retry_after, None);
    assert_eq!(ok.headers().len(), 3);
    assert_eq!(ok.throttle_reply(), [0, 10, 9, -1, 6]);

    let never = Decision::from_reply(reply(&[2, 10, 10, 0, -1])).unwrap();
    assert_eq!(never.outcome, Outcome::CostExceedsLimit);
    assert_eq!(never.retry_after, None);
    assert_eq!(never.throttle_reply()[3], -1);
}

#[test]
fn malformed_replies_are_typed_errors() {
    for v in [
        reply(&[0, 1, 2]),
        reply(&[7, 1, 1, 1, 1]),
        Value::Nil,
        Value::Bulk(b"x".to_vec().into()),
    ] {
        let e = Decision::from_reply(v).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Protocol | ErrorKind::Conversion),
            "{e:?}"
        );
    }
}

#[test]
fn bad_parameters_are_config_errors() {
    let s = Duration::from_secs(1);
    for a in [
        Algorithm::sliding_log(0, s),
        Algorithm::fixed_window(10, Duration::from_micros(10)),
        Algorithm::sliding_counter(u64::MAX, s),
        Algorithm::token_bucket(10, 0, s),
        Algorithm::token_bucket(10, 1, Duration::ZERO),
        Algorithm::gcra(10, 0, s),
        Algorithm::gcra(10, 2_000_000, s),
        Algorithm::gcra(u64::MAX, 1, s),
    ] {
        let e = Limiter::new("x", a).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{a:?}");
    }
    assert_eq!(
        Limiter::new("", Algorithm::gcra(1, 1, s))
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    assert!(Limiter::new("x", Algorithm::gcra(99, 100, Duration::from_secs(3600))).is_ok());
}

#[test]
fn keys_put_the_id_in_the_hash_tag() {
    let l = Limiter::new("api", Algorithm::sliding_log(5, Duration::from_secs(1))).unwrap();
    assert_eq!(l.key("user-1"), "api:{user-1}:log");
    assert_eq!(Algorithm::gcra(99, 1, Duration::from_secs(60)).limit(), 100);
}

#[test]
fn memo_answers_until_retry_after_for_costs_at_least_the_refused_one() {
    let memo = Memo::new(2);
    let limited = Decision::from_reply(reply(&[1, 5, 0, 3_000_000, 2_000_000])).unwrap();
    let t0 = Duration::from_secs(100);
    memo.remember("a", 2, &limited, t0);
    let hit = memo.lookup("a", 2, t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(hit.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(hit.reset_after, Duration::from_secs(2));
    assert!(memo.lookup("a", 1, t0).is_none(), "a smaller cost may fit");
    assert!(memo.lookup("a", 2, t0 + Duration::from_secs(2)).is_none());
    assert!(
        memo.lookup("a", 2, t0).is_none(),
        "expired entries are dropped"
    );
    // Bounded: a full memo drops expired entries, then stops remembering.
    memo.remember("b", 1, &limited, t0);
    memo.remember("c", 1, &limited, t0);
    memo.remember("d", 1, &limited, t0);
    assert!(memo.lookup("d", 1, t0).is_none());
    memo.remember("e", 1, &limited, t0 + Duration::from_secs(5));
    assert!(memo.lookup("e", 1, t0 + Duration::from_secs(5)).is_some());
}
