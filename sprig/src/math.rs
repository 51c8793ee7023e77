//! Sprig's arithmetic: integer functions through `cast.ToInt64`, float functions through
//! shopspring/decimal (exact decimal arithmetic on the shortest form of each float).

use gotemplate::{Functions, Runtime, Value};

use crate::args::{Outcome, at_least, fixed, int, string, to_float64, to_int64, wrong_type};
use crate::strings::atoi;

/// Lists longer than this are refused instead of exhausting memory.
const MAX_SEQUENCE: usize = 1 << 24;

const DIVIDE_BY_ZERO: &str = "runtime error: integer divide by zero";

pub(crate) fn register(functions: &mut Functions) {
    functions.insert("add", |_, args| {
        Ok(Value::int64(
            args.iter().map(to_int64).fold(0, i64::wrapping_add),
        ))
    });
    functions.insert("add1", |_, args| {
        let [value] = fixed("add1", args)?;
        Ok(Value::int64(to_int64(value).wrapping_add(1)))
    });
    functions.insert("sub", |_, args| {
        integer_pair("sub", args, |a, b| Ok(a.wrapping_sub(b)))
    });
    functions.insert("div", |_, args| {
        integer_pair("div", args, |a, b| {
            a.checked_div(b)
                .or_else(|| (b == -1).then(|| a.wrapping_neg()))
                .ok_or(DIVIDE_BY_ZERO)
        })
    });
    functions.insert("mod", |_, args| {
        integer_pair("mod", args, |a, b| {
            if b == 0 {
                Err(DIVIDE_BY_ZERO)
            } else {
                Ok(a.wrapping_rem(b))
            }
        })
    });
    functions.insert("mul", |_, args| {
        let args = at_least("mul", args, 1)?;
        Ok(Value::int64(
            args.iter().map(to_int64).fold(1, i64::wrapping_mul),
        ))
    });
    functions.insert("max", |_, args| extreme("max", args, std::cmp::max));
    functions.insert("biggest", |_, args| extreme("biggest", args, std::cmp::max));
    functions.insert("min", |_, args| extreme("min", args, std::cmp::min));
    functions.insert("maxf", |_, args| extreme_float("maxf", args, go_max));
    functions.insert("minf", |_, args| extreme_float("minf", args, go_min));
    functions.insert("floor", |_, args| float_unary("floor", args, f64::floor));
    functions.insert("ceil", |_, args| float_unary("ceil", args, f64::ceil));
    functions.insert("round", round);
    functions.insert("addf", |_, args| {
        decimal_fold(&Value::Float(0.0), args, |a, b| Ok(a.add(b)))
    });
    functions.insert("add1f", |_, args| {
        let [value] = fixed("add1f", args)?;
        decimal_fold(value, &[Value::int(1)], |a, b| Ok(a.add(b)))
    });
    functions.insert("subf", |_, args| {
        decimal_rest("subf", args, |a, b| Ok(a.sub(b)))
    });
    functions.insert("mulf", |_, args| {
        decimal_rest("mulf", args, |a, b| Ok(a.mul(b)))
    });
    functions.insert("divf", |_, args| decimal_rest("divf", args, Decimal::div));
    functions.insert("int", |_, args| {
        let [value] = fixed("int", args)?;
        Ok(Value::int(to_int64(value)))
    });
    functions.insert("int64", |_, args| {
        let [value] = fixed("int64", args)?;
        Ok(Value::int64(to_int64(value)))
    });
    functions.insert("float64", |_, args| {
        let [value] = fixed("float64", args)?;
        Ok(Value::Float(to_float64(value)))
    });
    functions.insert("atoi", |_, args| {
        let [text] = fixed("atoi", args)?;
        Ok(Value::int(atoi(string(text)?)))
    });
    functions.insert("toDecimal", |_, args| {
        let [value] = fixed("toDecimal", args)?;
        Ok(Value::int64(
            parse_octal(&value.to_go_string()).unwrap_or(0),
        ))
    });
    functions.insert("until", until);
    functions.insert("untilStep", until_step);
    functions.insert("seq", seq);
    functions.insert("randInt", rand_int);
}

fn integer_pair(
    name: &str,
    args: &[Value],
    operation: fn(i64, i64) -> Result<i64, &'static str>,
) -> Outcome {
    let [a, b] = fixed(name, args)?;
    Ok(Value::int64(operation(to_int64(a), to_int64(b))?))
}

fn extreme(name: &str, args: &[Value], pick: fn(i64, i64) -> i64) -> Outcome {
    let args = at_least(name, args, 1)?;
    Ok(Value::int64(
        args[1..]
            .iter()
            .map(to_int64)
            .fold(to_int64(&args[0]), pick),
    ))
}

fn extreme_float(name: &str, args: &[Value], pick: fn(f64, f64) -> f64) -> Outcome {
    let args = at_least(name, args, 1)?;
    Ok(Value::Float(
        args[1..]
            .iter()
            .map(to_float64)
            .fold(to_float64(&args[0]), pick),
    ))
}

/// Go's `math.Max`: NaN wins, +0 beats -0.
#[allow(clippy::float_cmp)]
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b && a == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins, -0 beats +0.
#[allow(clippy::float_cmp)]
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b && a == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

fn float_unary(name: &str, args: &[Value], operation: fn(f64) -> f64) -> Outcome {
    let [value] = fixed(name, args)?;
    Ok(Value::Float(operation(to_float64(value))))
}

/// A Go `float64` parameter (integer literals convert).
fn float_param(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float(number) => Ok(*number),
        #[allow(clippy::cast_precision_loss)]
        Value::Int(number, _) => Ok(*number as f64),
        other => Err(wrong_type("float64", other)),
    }
}

fn round(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let args = at_least("round", args, 2)?;
    let value = to_float64(&args[0]);
    #[allow(clippy::cast_precision_loss)]
    let places = int(&args[1])? as f64;
    let round_on = match args.get(2) {
        Some(option) => float_param(option)?,
        None => 0.5,
    };
    for extra in args.iter().skip(3) {
        float_param(extra)?;
    }
    let power = 10_f64.powf(places);
    let digit = power * value;
    let fraction = digit - digit.trunc();
    let rounded = if fraction >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(rounded / power))
}

/// `strconv.ParseInt(text, 8, 64)`.
fn parse_octal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| (b'0'..=b'7').contains(&byte)) {
        return None;
    }
    i64::from_str_radix(text, 8).ok()
}

/// Sprig's `untilStep`: from `start` towards `stop` (exclusive) by `step`.
fn sequence(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let mut numbers = Vec::new();
    let ascending = stop >= start;
    if (ascending && step <= 0) || (!ascending && step >= 0) {
        return Ok(numbers);
    }
    let mut current = start;
    while if ascending {
        current < stop
    } else {
        current > stop
    } {
        if numbers.len() >= MAX_SEQUENCE {
            return Err(format!("sequence longer than {MAX_SEQUENCE} elements"));
        }
        numbers.push(current);
        match current.checked_add(step) {
            Some(next) => current = next,
            None => break,
        }
    }
    Ok(numbers)
}

fn int_list(numbers: Vec<i64>) -> Value {
    Value::list(numbers.into_iter().map(Value::int).collect())
}

fn until(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [count] = fixed("until", args)?;
    let count = int(count)?;
    Ok(int_list(sequence(
        0,
        count,
        if count < 0 { -1 } else { 1 },
    )?))
}

fn until_step(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [start, stop, step] = fixed("untilStep", args)?;
    Ok(int_list(sequence(int(start)?, int(stop)?, int(step)?)?))
}

fn seq(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let params = args.iter().map(int).collect::<Result<Vec<_>, _>>()?;
    let direction = |start: i64, end: i64| if end < start { -1 } else { 1 };
    let numbers = match params[..] {
        [end] => {
            let step = direction(1, end);
            sequence(1, end.saturating_add(step), step)?
        }
        [start, end] => {
            let step = direction(start, end);
            sequence(start, end.saturating_add(step), step)?
        }
        [start, step, end] => {
            let increment = direction(start, end);
            if increment < 0 && step > 0 {
                Vec::new()
            } else {
                sequence(start, end.saturating_add(increment), step)?
            }
        }
        _ => Vec::new(),
    };
    let texts: Vec<String> = numbers.iter().map(i64::to_string).collect();
    Ok(texts.join(" ").into())
}

fn rand_int(_: &mut dyn Runtime, args: &[Value]) -> Outcome {
    let [low, high] = fixed("randInt", args)?;
    let (low, high) = (int(low)?, int(high)?);
    let span = high
        .checked_sub(low)
        .filter(|span| *span > 0)
        .ok_or("invalid argument to Intn")?;
    let offset = crate::random::next_u64() % span.unsigned_abs();
    Ok(Value::int(low + i64::try_from(offset).unwrap_or(0)))
}

fn decimal_fold(
    start: &Value,
    rest: &[Value],
    operation: fn(Decimal, Decimal) -> Result<Decimal, String>,
) -> Outcome {
    let mut total = Decimal::from_float(to_float64(start));
    for value in rest {
        total = operation(total, Decimal::from_float(to_float64(value)))?;
    }
    Ok(Value::Float(total.to_float()))
}

fn decimal_rest(
    name: &str,
    args: &[Value],
    operation: fn(Decimal, Decimal) -> Result<Decimal, String>,
) -> Outcome {
    let args = at_least(name, args, 1)?;
    decimal_fold(&args[0], &args[1..], operation)
}

/// A decimal number `mantissa / 10^scale`, or a plain float where the digits do not fit.
#[derive(Clone, Copy)]
enum Decimal {
    Exact { mantissa: i128, scale: u32 },
    Float(f64),
}

/// shopspring/decimal's `DivisionPrecision`.
const DIVISION_PRECISION: u32 = 16;

impl Decimal {
    /// `decimal.NewFromFloat`: the shortest decimal that reads back as `value`.
    fn from_float(value: f64) -> Self {
        if !value.is_finite() {
            return Decimal::Float(value);
        }
        let text = format!("{value}");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let Ok(scale) = u32::try_from(fraction.len()) else {
            return Decimal::Float(value);
        };
        format!("{whole}{fraction}")
            .parse::<i128>()
            .map_or(Decimal::Float(value), |mantissa| Decimal::Exact {
                mantissa,
                scale,
            })
    }

    fn to_float(self) -> f64 {
        match self {
            Decimal::Float(value) => value,
            Decimal::Exact { mantissa, scale } => {
                format!("{mantissa}e-{scale}").parse().unwrap_or(f64::NAN)
            }
        }
    }

    fn aligned(self, other: Self) -> Option<(i128, i128, u32)> {
        let (
            Decimal::Exact {
                mantissa: a,
                scale: sa,
            },
            Decimal::Exact {
                mantissa: b,
                scale: sb,
            },
        ) = (self, other)
        else {
            return None;
        };
        let scale = sa.max(sb);
        Some((
            a.checked_mul(10_i128.checked_pow(scale - sa)?)?,
            b.checked_mul(10_i128.checked_pow(scale - sb)?)?,
            scale,
        ))
    }

    fn add(self, other: Self) -> Self {
        self.aligned(other)
            .and_then(|(a, b, scale)| {
                Some(Decimal::Exact {
                    mantissa: a.checked_add(b)?,
                    scale,
                })
            })
            .unwrap_or_else(|| Decimal::Float(self.to_float() + other.to_float()))
    }

    fn sub(self, other: Self) -> Self {
        self.aligned(other)
            .and_then(|(a, b, scale)| {
                Some(Decimal::Exact {
                    mantissa: a.checked_sub(b)?,
                    scale,
                })
            })
            .unwrap_or_else(|| Decimal::Float(self.to_float() - other.to_float()))
    }

    fn mul(self, other: Self) -> Self {
        let exact = match (self, other) {
            (
                Decimal::Exact {
                    mantissa: a,
                    scale: sa,
                },
                Decimal::Exact {
                    mantissa: b,
                    scale: sb,
                },
            ) => a.checked_mul(b).map(|mantissa| Decimal::Exact {
                mantissa,
                scale: sa + sb,
            }),
            _ => None,
        };
        exact.unwrap_or_else(|| Decimal::Float(self.to_float() * other.to_float()))
    }

    /// `Decimal.Div`: the quotient rounded half away from zero to 16 decimal places.
    fn div(self, other: Self) -> Result<Self, String> {
        if other.to_float() == 0.0 {
            return Err("decimal division by 0".into());
        }
        let exact = self.aligned(other).and_then(|(a, b, _)| {
            let numerator = a.checked_mul(10_i128.pow(DIVISION_PRECISION))?;
            let (quotient, remainder) = (numerator / b, numerator % b);
            let round_away = remainder.unsigned_abs().checked_mul(2)? >= b.unsigned_abs();
            let signum = if (numerator < 0) == (b < 0) { 1 } else { -1 };
            let mantissa = if round_away {
                quotient + signum
            } else {
                quotient
            };
            Some(Decimal::Exact {
                mantissa,
                scale: DIVISION_PRECISION,
            })
        });
        Ok(exact.unwrap_or_else(|| Decimal::Float(self.to_float() / other.to_float())))
    }
}
