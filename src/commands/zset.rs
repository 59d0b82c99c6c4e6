//! Options and replies of the sorted-set commands: [`ZAddOptions`], [`ZRangeOptions`],
//! [`ScoreBound`].

use crate::cmd::{ArgWriter, ToArgs};

use super::Condition;

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ScoreBound {
    /// Scores `>=` (as a minimum) or `<=` (as a maximum) this one.
    Inclusive(f64),
    /// Scores strictly beyond this one (`(score` on the wire).
    Exclusive(f64),
    /// No lower limit (`-inf`).
    NegInf,
    /// No upper limit (`+inf`).
    PosInf,
}

impl ToArgs for ScoreBound {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match *self {
            ScoreBound::Inclusive(s) => s.write_args(out),
            ScoreBound::Exclusive(s) => out.write(format!("({}", score_text(s)).as_bytes()),
            ScoreBound::NegInf => out.write(b"-inf"),
            ScoreBound::PosInf => out.write(b"+inf"),
        }
    }
}

fn score_text(s: f64) -> String {
    if s.is_infinite() {
        if s > 0.0 { "+inf" } else { "-inf" }.to_owned()
    } else {
        format!("{s}")
    }
}

/// `ZADD`'s `GT`/`LT`: update an existing member only when the new score compares so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScoreUpdate {
    /// `GT`: only when the new score is greater than the current one.
    Gt,
    /// `LT`: only when the new score is less than the current one.
    Lt,
}

/// Options of `ZADD`.
///
/// ```
/// use valkit::{Condition, ScoreUpdate, ZAddOptions};
/// let opts = ZAddOptions::new().condition(Condition::Xx).update(ScoreUpdate::Gt).ch();
/// assert!(opts.ch);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ZAddOptions {
    /// `NX` (only add new members) or `XX` (only update existing ones).
    pub condition: Option<Condition>,
    /// `GT` or `LT`: only update when the score moves that way.
    pub update: Option<ScoreUpdate>,
    /// `CH`: count changed members, not only added ones, in the reply.
    pub ch: bool,
}

impl ZAddOptions {
    /// No options: add or update every member, count the added ones.
    pub fn new() -> ZAddOptions {
        ZAddOptions::default()
    }

    /// Set `NX` or `XX`.
    pub fn condition(mut self, condition: Condition) -> ZAddOptions {
        self.condition = Some(condition);
        self
    }

    /// Set `GT` or `LT`.
    pub fn update(mut self, update: ScoreUpdate) -> ZAddOptions {
        self.update = Some(update);
        self
    }

    /// Set `CH`: the reply counts changed and added members.
    pub fn ch(mut self) -> ZAddOptions {
        self.ch = true;
        self
    }
}

impl ToArgs for ZAddOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        self.condition.write_args(out);
        match self.update {
            Some(ScoreUpdate::Gt) => out.write(b"GT"),
            Some(ScoreUpdate::Lt) => out.write(b"LT"),
            None => {}
        }
        if self.ch {
            out.write(b"CH");
        }
    }
}

/// Which members a `ZRANGE` selects: by rank or by score.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ZRangeBy {
    /// By rank, both ends inclusive, counted from 0; negative ranks count from the end
    /// (`-1` is the last member). With `rev`, ranks count from the highest score.
    Index {
        /// First rank.
        start: i64,
        /// Last rank.
        stop: i64,
    },
    /// By score (`BYSCORE`), always given lowest first, also with `rev`.
    Score {
        /// The lower end.
        min: ScoreBound,
        /// The upper end.
        max: ScoreBound,
    },
}

/// What `ZRANGE` returns: the range, the order, and a page of it.
///
/// ```
/// use valkit::{ScoreBound, ZRangeOptions};
/// // The 10 highest scores above 50, highest first.
/// let opts = ZRangeOptions::by_score(ScoreBound::Exclusive(50.0), ScoreBound::PosInf)
///     .rev()
///     .limit(0, 10);
/// assert!(opts.rev);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ZRangeOptions {
    /// The range.
    pub by: ZRangeBy,
    /// `REV`: highest score first.
    pub rev: bool,
    /// `LIMIT offset count` (by score only): skip `offset` members, return at most `count`
    /// (a negative count means all).
    pub limit: Option<(i64, i64)>,
}

impl Default for ZRangeOptions {
    /// All members, lowest score first.
    fn default() -> ZRangeOptions {
        ZRangeOptions::by_index(0, -1)
    }
}

impl ZRangeOptions {
    /// Members at ranks `start..=stop`.
    pub fn by_index(start: i64, stop: i64) -> ZRangeOptions {
        ZRangeOptions {
            by: ZRangeBy::Index { start, stop },
            rev: false,
            limit: None,
        }
    }

    /// Members with scores between `min` and `max` (`BYSCORE`).
    pub fn by_score(min: ScoreBound, max: ScoreBound) -> ZRangeOptions {
        ZRangeOptions {
            by: ZRangeBy::Score { min, max },
            rev: false,
            limit: None,
        }
    }

    /// Highest score first (`REV`).
    pub fn rev(mut self) -> ZRangeOptions {
        self.rev = true;
        self
    }

    /// Only a page of the range (`LIMIT offset count`); the server accepts it by score only.
    pub fn limit(mut self, offset: i64, count: i64) -> ZRangeOptions {
        self.limit = Some((offset, count));
        self
    }
}

impl ToArgs for ZRangeOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match self.by {
            ZRangeBy::Index { start, stop } => (start, stop).write_args(out),
            ZRangeBy::Score { min, max } => {
                // With REV the server wants the range written from high to low.
                if self.rev {
                    (max, min).write_args(out)
                } else {
                    (min, max).write_args(out)
                }
                out.write(b"BYSCORE");
            }
        }
        if self.rev {
            out.write(b"REV");
        }
        if let Some((offset, count)) = self.limit {
            ("LIMIT", offset, count).write_args(out);
        }
    }
}

/// `ZADD`'s member/score pairs followed by the options, written in the server's order
/// (options first, then `score member` for each pair).
pub(crate) fn zadd_cmd<K: ToArgs, M: ToArgs>(
    key: K,
    members: &[(M, f64)],
    opts: &ZAddOptions,
) -> crate::cmd::Cmd {
    let mut c = crate::cmd::known_cmd!("ZADD").arg(key).arg(opts);
    for (member, score) in members {
        c.add_arg(score).add_arg(member);
    }
    c
}

/// The sorted-set commands (see `define.rs` for the form).
macro_rules! zset_commands {
    ($out:ident) => { $out! {
    /// `ZADD key score member ...`: `members` are `(member, score)` pairs; returns how many
    /// members are new.
    ///
    /// A leaderboard:
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ZRangeOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// conn.zadd("board", &[("ann", 310.0), ("bob", 250.0), ("cyd", 420.0)])?;
    /// conn.zincr_by("board", "bob", 100.0)?;
    /// let top: Vec<(String, f64)> =
    ///     conn.zrange_withscores("board", ZRangeOptions::by_index(0, 2).rev())?;
    /// assert_eq!(top[0], ("cyd".to_string(), 420.0));
    /// assert_eq!(conn.zrevrank("board", "bob")?, Some(1));
    /// # Ok(()) }
    /// ```
    fn zadd<K: ToArgs, M: ToArgs>(key: K, members: &[(M, f64)]) -> u64 {
        zadd_cmd(key, members, &ZAddOptions::new())
    }

    /// `ZADD key [NX|XX] [GT|LT] [CH] score member ...`: how many members were added (with
    /// `CH`: added or changed).
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ScoreUpdate, ZAddOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// // Keep each player's best score.
    /// let best = ZAddOptions::new().update(ScoreUpdate::Gt).ch();
    /// let changed = conn.zadd_options("scores", &[("ann", 10.0), ("bob", 7.5)], &best)?;
    /// # Ok(()) }
    /// ```
    fn zadd_options<K: ToArgs, M: ToArgs>(key: K, members: &[(M, f64)], opts: &ZAddOptions) -> u64 {
        zadd_cmd(key, members, opts)
    }

    /// `ZINCRBY key delta member`: the member's score afterwards. The member comes before
    /// the delta, as the field does in [`hincr_by`](Commands::hincr_by).
    fn zincr_by<K: ToArgs, M: ToArgs>(key: K, member: M, delta: f64) -> f64 {
        known_cmd!("ZINCRBY").arg(key).arg(delta).arg(member)
    }

    /// `ZRANGE key ...` (Redis 6.2+ syntax): the members of a range by rank or score, in
    /// either order, optionally a page of it; e.g. as `Vec<String>`.
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ScoreBound, ZRangeOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let top3: Vec<String> = conn.zrange("scores", ZRangeOptions::by_index(0, 2).rev())?;
    /// let passed: Vec<String> = conn.zrange(
    ///     "scores",
    ///     ZRangeOptions::by_score(ScoreBound::Inclusive(5.0), ScoreBound::PosInf),
    /// )?;
    /// # Ok(()) }
    /// ```
    fn zrange<K: ToArgs>(key: K, opts: ZRangeOptions) -> RV { known_cmd!("ZRANGE").arg(key).arg(opts) }

    /// `ZRANGE key ... WITHSCORES`: like [`zrange`](Commands::zrange), with each member's
    /// score: as `Vec<(String, f64)>` (from RESP2's flat array or RESP3's pairs alike), or
    /// a map.
    fn zrange_withscores<K: ToArgs>(key: K, opts: ZRangeOptions) -> RV {
        known_cmd!("ZRANGE").arg(key).arg(opts).arg("WITHSCORES")
    }

    /// `ZRANK key member`: the member's rank, lowest score first (0 is the lowest); `None`
    /// when the member (or key) does not exist.
    fn zrank<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<u64> {
        known_cmd!("ZRANK").arg(key).arg(member)
    }

    /// `ZREVRANK key member`: the member's rank, highest score first (0 is the highest);
    /// `None` when the member (or key) does not exist.
    fn zrevrank<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<u64> {
        known_cmd!("ZREVRANK").arg(key).arg(member)
    }

    /// `ZCOUNT key min max`: how many members have a score in the range.
    fn zcount<K: ToArgs>(key: K, min: ScoreBound, max: ScoreBound) -> u64 {
        known_cmd!("ZCOUNT").arg(key).arg(min).arg(max)
    }

    /// `ZREMRANGEBYSCORE key min max`: how many members were removed.
    fn zrem_range_by_score<K: ToArgs>(key: K, min: ScoreBound, max: ScoreBound) -> u64 {
        known_cmd!("ZREMRANGEBYSCORE").arg(key).arg(min).arg(max)
    }

    /// `ZCARD key`: the number of members.
    fn zcard<K: ToArgs>(key: K) -> u64 { known_cmd!("ZCARD").arg(key) }

    /// `ZSCORE key member`: the score, `None` when the member (or key) does not exist.
    fn zscore<K: ToArgs, M: ToArgs>(key: K, member: M) -> Option<f64> {
        known_cmd!("ZSCORE").arg(key).arg(member)
    }

    /// `ZREM key member...`: how many members were removed.
    fn zrem<K: ToArgs, M: ToArgs>(key: K, members: M) -> u64 { known_cmd!("ZREM").arg(key).arg(members) }
    }};
}
