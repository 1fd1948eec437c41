//! The compact encodings of stored blocks.
//!
//! Values are stored as integers: the value divided by its unit's step
//! ([`cm_proto::series::Unit::step`]) and rounded. A block of raw samples is
//! a list of (time, value) in time order; a block of rollups a list of
//! (bucket, min, max, mean, count). Both are written as differences from the
//! previous entry in LEB128 varints, with a run length for entries that
//! repeat the previous difference of nothing: a value that holds still at a
//! steady interval costs a few bytes per block, however long the block.

use thiserror::Error;

/// Raw sample times are kept to this many milliseconds.
pub const TIME_UNIT_MS: i64 = 100;

#[derive(Debug, Error, PartialEq)]
#[error("corrupt block: {0}")]
pub struct CodecError(&'static str);

fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn get(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.data.split_first().ok_or(CodecError("ends inside a number"))?;
            self.data = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("a number longer than 64 bits"))
    }

    fn signed(&mut self) -> Result<i64, CodecError> {
        self.get().map(unzigzag)
    }

    fn done(&self) -> bool {
        self.data.is_empty()
    }
}

/// Encodes raw samples `(ts in TIME_UNIT_MS, value)`, in time order, relative to `start`.
pub fn encode_samples(start: i64, samples: &[(i64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + samples.len());
    let (mut ts, mut dts, mut q) = (start, 0i64, 0i64);
    let mut run = 0u64;
    for &(t, v) in samples {
        let (d, dv) = (t - ts, v - q);
        let dod = d - dts;
        if dod == 0 && dv == 0 {
            run += 1;
        } else {
            if run > 0 {
                put(&mut out, (run << 1) | 1);
                run = 0;
            }
            put(&mut out, zigzag(dod) << 1);
            put(&mut out, zigzag(dv));
        }
        (ts, dts, q) = (t, d, v);
    }
    if run > 0 {
        put(&mut out, (run << 1) | 1);
    }
    out
}

/// Decodes what [`encode_samples`] wrote.
pub fn decode_samples(start: i64, data: &[u8]) -> Result<Vec<(i64, i64)>, CodecError> {
    let mut r = Reader { data };
    let mut out = Vec::with_capacity(data.len());
    let (mut ts, mut dts, mut q) = (start, 0i64, 0i64);
    while !r.done() {
        let h = r.get()?;
        if h & 1 == 1 {
            let n = h >> 1;
            if n > 1 << 24 {
                return Err(CodecError("a run longer than any block"));
            }
            for _ in 0..n {
                ts += dts;
                out.push((ts, q));
            }
        } else {
            dts += unzigzag(h >> 1);
            ts += dts;
            q += r.signed()?;
            out.push((ts, q));
        }
    }
    Ok(out)
}

/// Encodes one interval's samples `(series id, value)`, ids ascending.
pub fn encode_interval(samples: &[(i64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 4);
    let mut id = 0;
    for &(next, q) in samples {
        put(&mut out, zigzag(next - id));
        put(&mut out, zigzag(q));
        id = next;
    }
    out
}

/// Decodes what [`encode_interval`] wrote.
pub fn decode_interval(data: &[u8]) -> Result<Vec<(i64, i64)>, CodecError> {
    let mut r = Reader { data };
    let mut out = Vec::with_capacity(data.len() / 3);
    let mut id = 0;
    while !r.done() {
        id += r.signed()?;
        out.push((id, r.signed()?));
    }
    Ok(out)
}

/// A rollup of the samples of one bucket, in stored integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roll {
    /// The bucket's index from the block's start.
    pub bucket: i64,
    pub min: i64,
    pub max: i64,
    pub mean: i64,
    pub count: u32,
}

impl Roll {
    /// The rollup of `values` (not empty).
    pub fn of(bucket: i64, values: impl Iterator<Item = i64>) -> Option<Roll> {
        let (mut min, mut max, mut sum, mut count) = (i64::MAX, i64::MIN, 0i128, 0u32);
        for v in values {
            (min, max, sum, count) = (min.min(v), max.max(v), sum + i128::from(v), count + 1);
        }
        (count > 0).then(|| Roll { bucket, min, max, mean: div_round(sum, i128::from(count)), count })
    }

    /// The rollup of finer rollups (weighted by their counts).
    pub fn merge(bucket: i64, parts: &[Roll]) -> Option<Roll> {
        let count: u32 = parts.iter().map(|r| r.count).sum();
        (count > 0).then(|| Roll {
            bucket,
            min: parts.iter().map(|r| r.min).min().unwrap_or(0),
            max: parts.iter().map(|r| r.max).max().unwrap_or(0),
            mean: div_round(parts.iter().map(|r| i128::from(r.mean) * i128::from(r.count)).sum(), i128::from(count)),
            count,
        })
    }
}

fn div_round(sum: i128, n: i128) -> i64 {
    let q = sum.div_euclid(n);
    let r = sum.rem_euclid(n);
    (if 2 * r >= n { q + 1 } else { q }) as i64
}

/// Encodes rollups in bucket order.
pub fn encode_rollups(rolls: &[Roll]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + rolls.len() * 2);
    let mut prev = Roll { bucket: -1, min: 0, max: 0, mean: 0, count: 0 };
    let mut run = 0u64;
    for r in rolls {
        let same = r.bucket == prev.bucket + 1
            && (r.min, r.max, r.mean, r.count) == (prev.min, prev.max, prev.mean, prev.count);
        if same {
            run += 1;
        } else {
            if run > 0 {
                put(&mut out, (run << 1) | 1);
                run = 0;
            }
            put(&mut out, ((r.bucket - prev.bucket) as u64) << 1);
            put(&mut out, zigzag(r.min - prev.min));
            put(&mut out, (r.max - r.min) as u64);
            put(&mut out, (r.mean - r.min) as u64);
            put(&mut out, u64::from(r.count));
        }
        prev = *r;
    }
    if run > 0 {
        put(&mut out, (run << 1) | 1);
    }
    out
}

/// Decodes what [`encode_rollups`] wrote.
pub fn decode_rollups(data: &[u8]) -> Result<Vec<Roll>, CodecError> {
    let mut r = Reader { data };
    let mut out = Vec::new();
    let mut prev = Roll { bucket: -1, min: 0, max: 0, mean: 0, count: 0 };
    while !r.done() {
        let h = r.get()?;
        if h & 1 == 1 {
            let n = h >> 1;
            if n > 1 << 20 {
                return Err(CodecError("a run longer than any block"));
            }
            for _ in 0..n {
                prev.bucket += 1;
                out.push(prev);
            }
        } else {
            let step = (h >> 1) as i64;
            if step < 1 {
                return Err(CodecError("buckets out of order"));
            }
            let min = prev.min + r.signed()?;
            let max = min + r.get()? as i64;
            let mean = min + r.get()? as i64;
            let count = u32::try_from(r.get()?).map_err(|_| CodecError("a count beyond 32 bits"))?;
            prev = Roll { bucket: prev.bucket + step, min, max, mean, count };
            out.push(prev);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_and_a_steady_value_costs_almost_nothing() {
        let steady: Vec<(i64, i64)> = (0..300).map(|i| (1000 + i * 20, 42)).collect();
        let bytes = encode_samples(1000, &steady);
        assert!(bytes.len() <= 8, "300 steady samples in {} bytes", bytes.len());
        assert_eq!(decode_samples(1000, &bytes).unwrap(), steady);

        let mut x = 12345u64;
        let noisy: Vec<(i64, i64)> = (0..300)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (5000 + i * 20 + (x >> 62) as i64, 1_000_000 + (x >> 40) as i64 % 5000 - 2500)
            })
            .collect();
        let bytes = encode_samples(5000, &noisy);
        assert_eq!(decode_samples(5000, &bytes).unwrap(), noisy);
        assert!(bytes.len() < 300 * 4, "noisy: {} bytes", bytes.len());
    }

    #[test]
    fn rollups_round_trip_with_gaps_and_negative_values() {
        let rolls = vec![
            Roll { bucket: 0, min: -5, max: 7, mean: 1, count: 30 },
            Roll { bucket: 1, min: -5, max: 7, mean: 1, count: 30 },
            Roll { bucket: 2, min: -5, max: 7, mean: 1, count: 30 },
            Roll { bucket: 7, min: 100, max: 100, mean: 100, count: 3 },
        ];
        let bytes = encode_rollups(&rolls);
        assert_eq!(decode_rollups(&bytes).unwrap(), rolls);
    }

    #[test]
    fn rollups_agree_with_their_samples_and_merge_by_count() {
        let r = Roll::of(0, [1, 2, 3, 10].into_iter()).unwrap();
        assert_eq!((r.min, r.max, r.mean, r.count), (1, 10, 4, 4));
        let a = Roll::of(0, [0, 0].into_iter()).unwrap();
        let b = Roll::of(1, [9].into_iter()).unwrap();
        let m = Roll::merge(0, &[a, b]).unwrap();
        assert_eq!((m.min, m.max, m.mean, m.count), (0, 9, 3, 3));
        assert_eq!(Roll::of(0, std::iter::empty()), None);
    }

    #[test]
    fn intervals_round_trip() {
        let samples = vec![(1, 5), (2, -7), (40, 1 << 40), (41, 0)];
        assert_eq!(decode_interval(&encode_interval(&samples)).unwrap(), samples);
        assert!(decode_interval(&[0x02]).is_err(), "an id without a value");
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        assert!(decode_samples(0, &[0x80]).is_err());
        assert!(decode_samples(0, &[0xff; 11]).is_err());
        assert!(decode_rollups(&[0x00]).is_err(), "a bucket step of 0");
        assert!(decode_rollups(&[0x02, 0x00]).is_err(), "ends inside an entry");
        assert!(decode_samples(0, &[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err(), "a run of billions");
    }
}
