//! Options and replies of the sorted-set commands: [`ZAddOptions`], [`ZRangeOptions`],
//! [`ScoreBound`].

use crate::cmd::{ArgWriter, FromValue, ToArgs};
use crate::error::{Error, Result};
use crate::resp::Value;

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

/// Members with scores: a RESP2 flat array `member, score, ...` or RESP3 `[member, score]`
/// pairs.
pub(crate) fn parse_with_scores(v: Value) -> Result<Vec<(Vec<u8>, f64)>> {
    let items = match v.strip_attributes().into_result()? {
        Value::Array(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => {
            return Err(Error::conversion(format!(
                "cannot read a {} reply as members with scores",
                other.type_name()
            )))
        }
    };
    if items.first().is_some_and(|f| f.as_slice().is_some()) {
        return items.into_iter().map(FromValue::from_value).collect();
    }
    if items.len() % 2 != 0 {
        return Err(Error::conversion(format!(
            "an array of {} elements is not member/score pairs",
            items.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        out.push((Vec::<u8>::from_value(m)?, f64::from_value(s)?));
    }
    Ok(out)
}
