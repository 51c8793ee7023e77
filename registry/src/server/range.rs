//! `Range` requests on blobs, parsed as Go's `net/http` parses them (distribution serves
//! blobs with `http.ServeContent`).

/// What a `Range` header asks of content of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole content: no header, or ranges that are served whole (several ranges, or
    /// ranges adding up to more than the content, as Go does).
    Full,
    /// One range: `start` and `length` in bytes.
    Partial {
        /// The first byte.
        start: u64,
        /// How many bytes.
        length: u64,
    },
    /// Nothing of the content overlaps the ranges.
    NoOverlap,
    /// The header is not a byte range.
    Invalid,
}

/// Parses a `Range` header value for content of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let Some(specs) = header.strip_prefix("bytes=") else {
        return RangeRequest::Invalid;
    };
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some((start, end)) = spec.split_once('-') else {
            return RangeRequest::Invalid;
        };
        let (start, end) = (start.trim(), end.trim());
        if start.is_empty() {
            // A suffix: the last `end` bytes.
            let Ok(suffix) = end.parse::<u64>() else {
                return RangeRequest::Invalid;
            };
            let suffix = suffix.min(size);
            if suffix == 0 {
                no_overlap = true;
                continue;
            }
            ranges.push((size - suffix, suffix));
            continue;
        }
        let Ok(first) = start.parse::<u64>() else {
            return RangeRequest::Invalid;
        };
        if first >= size {
            no_overlap = true;
            continue;
        }
        let last = if end.is_empty() {
            size - 1
        } else {
            let Ok(last) = end.parse::<u64>() else {
                return RangeRequest::Invalid;
            };
            if first > last {
                return RangeRequest::Invalid;
            }
            last.min(size - 1)
        };
        ranges.push((first, last - first + 1));
    }
    match ranges.as_slice() {
        [(start, length)] => RangeRequest::Partial {
            start: *start,
            length: *length,
        },
        [] if no_overlap => RangeRequest::NoOverlap,
        _ => RangeRequest::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_go_reads_them() {
        let partial = |start, length| RangeRequest::Partial { start, length };
        assert_eq!(parse_range(None, 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=2-4"), 10), partial(2, 3));
        assert_eq!(parse_range(Some("bytes=2-"), 10), partial(2, 8));
        assert_eq!(parse_range(Some("bytes=-3"), 10), partial(7, 3));
        assert_eq!(parse_range(Some("bytes=-30"), 10), partial(0, 10));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), partial(5, 5));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeRequest::NoOverlap);
        assert_eq!(
            parse_range(Some("bytes=10-20, 30-"), 10),
            RangeRequest::NoOverlap
        );
        assert_eq!(parse_range(Some("bytes=10-20, 3-4"), 10), partial(3, 2));
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("garbage"), 10), RangeRequest::Invalid);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeRequest::Invalid);
        assert_eq!(parse_range(Some("bytes=a-2"), 10), RangeRequest::Invalid);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeRequest::NoOverlap);
    }
}
