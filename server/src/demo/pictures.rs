//! Pictures for the demo catalog, drawn here so the demo needs no image files: a soft
//! two-colour gradient, a sun-like disc and a hill, and the item's name in a plain 5×7
//! bitmap font on a light band. Encoded as PNG, then stored through the same pipeline as an
//! upload (`media::process` re-encodes it), so the demo exercises the real path.

use image::{ImageFormat, Rgb, RgbImage};

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

/// Gentle colour pairs (top, bottom), picked by index.
const PALETTES: &[([u8; 3], [u8; 3])] = &[
    ([255, 214, 165], [253, 160, 133]),
    ([168, 218, 220], [69, 123, 157]),
    ([204, 227, 181], [120, 170, 110]),
    ([230, 210, 240], [150, 120, 190]),
    ([255, 236, 179], [240, 180, 90]),
    ([200, 220, 250], [110, 140, 210]),
];

/// 5×7 glyphs, rows top to bottom, `#` lit. Letters, digits and a little punctuation: enough
/// for the demo's titles. Anything else is drawn as a space.
const GLYPHS: &[(char, [&str; 7])] = &[
    (
        'A',
        [
            ".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'B',
        [
            "####.", "#...#", "#...#", "####.", "#...#", "#...#", "####.",
        ],
    ),
    (
        'C',
        [
            ".###.", "#...#", "#....", "#....", "#....", "#...#", ".###.",
        ],
    ),
    (
        'D',
        [
            "####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####.",
        ],
    ),
    (
        'E',
        [
            "#####", "#....", "#....", "####.", "#....", "#....", "#####",
        ],
    ),
    (
        'F',
        [
            "#####", "#....", "#....", "####.", "#....", "#....", "#....",
        ],
    ),
    (
        'G',
        [
            ".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####",
        ],
    ),
    (
        'H',
        [
            "#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'I',
        [
            ".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        'J',
        [
            "..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##..",
        ],
    ),
    (
        'K',
        [
            "#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#",
        ],
    ),
    (
        'L',
        [
            "#....", "#....", "#....", "#....", "#....", "#....", "#####",
        ],
    ),
    (
        'M',
        [
            "#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'N',
        [
            "#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#",
        ],
    ),
    (
        'O',
        [
            ".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
    ),
    (
        'P',
        [
            "####.", "#...#", "#...#", "####.", "#....", "#....", "#....",
        ],
    ),
    (
        'Q',
        [
            ".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#",
        ],
    ),
    (
        'R',
        [
            "####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#",
        ],
    ),
    (
        'S',
        [
            ".####", "#....", "#....", ".###.", "....#", "....#", "####.",
        ],
    ),
    (
        'T',
        [
            "#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..",
        ],
    ),
    (
        'U',
        [
            "#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
    ),
    (
        'V',
        [
            "#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
    ),
    (
        'W',
        [
            "#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#.",
        ],
    ),
    (
        'X',
        [
            "#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#",
        ],
    ),
    (
        'Y',
        [
            "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#..",
        ],
    ),
    (
        'Z',
        [
            "#####", "....#", "...#.", "..#..", ".#...", "#....", "#####",
        ],
    ),
    (
        '0',
        [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
    ),
    (
        '1',
        [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        '2',
        [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
    ),
    (
        '3',
        [
            "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.",
        ],
    ),
    (
        '4',
        [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
    ),
    (
        '5',
        [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
    ),
    (
        '6',
        [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '7',
        [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
    ),
    (
        '8',
        [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '9',
        [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
    ),
    (
        '-',
        [
            ".....", ".....", ".....", "#####", ".....", ".....", ".....",
        ],
    ),
    (
        '&',
        [
            ".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#",
        ],
    ),
    (
        '\'',
        [
            "..#..", "..#..", ".#...", ".....", ".....", ".....", ".....",
        ],
    ),
];

fn glyph(c: char) -> Option<&'static [&'static str; 7]> {
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c.to_ascii_uppercase())
        .map(|(_, rows)| rows)
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> Rgb<u8> {
    // Colours only: the demo's pictures are the one place floats are harmless.
    let l = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * t).round() as u8;
    Rgb([l(a[0], b[0]), l(a[1], b[1]), l(a[2], b[2])])
}

/// Words that fit a line of at most `max` characters, at most two lines.
fn lines(label: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = vec![String::new()];
    for word in label.split_whitespace() {
        let Some(last) = out.last_mut() else { break };
        if last.is_empty() {
            last.push_str(word);
        } else if last.len() + 1 + word.len() <= max {
            last.push(' ');
            last.push_str(word);
        } else if out.len() < 2 {
            out.push(word.to_string());
        } else {
            break;
        }
    }
    out.into_iter()
        .map(|l| l.chars().take(max).collect())
        .collect()
}

/// A PNG picture for the demo item `label`, in palette `n`.
pub fn picture(label: &str, n: usize) -> Vec<u8> {
    let (top, bottom) = PALETTES[n % PALETTES.len()];
    let mut img = RgbImage::from_fn(WIDTH, HEIGHT, |_, y| {
        mix(top, bottom, y as f32 / HEIGHT as f32)
    });
    // A sun and a hill: simple, friendly shapes.
    let (cx, cy, r) = (
        (WIDTH as i64) * (2 + (n as i64 % 3)) / 6,
        HEIGHT as i64 / 3,
        70i64,
    );
    let hill_top = HEIGHT as f32 * 0.62;
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (xi, yi) = (x as i64, y as i64);
        if (xi - cx).pow(2) + (yi - cy).pow(2) <= r * r {
            *px = mix([255, 250, 235], top, 0.15);
        }
        let wave = hill_top + 30.0 * ((x as f32) / 90.0 + n as f32).sin();
        if (y as f32) > wave {
            *px = mix(bottom, [40, 60, 50], 0.35);
        }
    }
    // The label on a light band near the bottom.
    const SCALE: u32 = 5;
    let max_chars = ((WIDTH - 40) / (6 * SCALE)) as usize;
    let text = lines(label, max_chars);
    let band_h = text.len() as u32 * 9 * SCALE + 2 * SCALE;
    let band_top = HEIGHT - band_h - 24;
    for y in band_top..band_top + band_h {
        for x in 16..WIDTH - 16 {
            img.put_pixel(x, y, Rgb([250, 248, 242]));
        }
    }
    for (row, line) in text.iter().enumerate() {
        let width = line.chars().count() as u32 * 6 * SCALE;
        let x0 = (WIDTH.saturating_sub(width)) / 2;
        let y0 = band_top + SCALE + row as u32 * 9 * SCALE;
        for (i, c) in line.chars().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            for (gy, bits) in rows.iter().enumerate() {
                for (gx, bit) in bits.chars().enumerate() {
                    if bit != '#' {
                        continue;
                    }
                    for dy in 0..SCALE {
                        for dx in 0..SCALE {
                            let x = x0 + (i as u32 * 6 + gx as u32) * SCALE + dx;
                            let y = y0 + gy as u32 * SCALE + dy;
                            if x < WIDTH && y < HEIGHT {
                                img.put_pixel(x, y, Rgb([35, 45, 70]));
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    // Writing a PNG into memory cannot fail for an RGB8 image of this size.
    if image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ImageFormat::Png)
        .is_err()
    {
        return Vec::new();
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_is_five_by_seven() {
        for (c, rows) in GLYPHS {
            assert!(rows.iter().all(|r| r.len() == 5), "{c}");
        }
    }

    #[test]
    fn labels_wrap_to_two_lines() {
        assert_eq!(
            lines("Week at the Mountain Cabin", 12),
            ["Week at the", "Mountain"]
        );
        assert_eq!(lines("Pie", 12), ["Pie"]);
    }

    #[test]
    fn pictures_pass_the_upload_pipeline() {
        let png = picture("Handmade Quilt", 1);
        let processed = crate::media::process(&png, crate::media::MAX_PIXELS).unwrap();
        assert_eq!((processed.width, processed.height), (WIDTH, HEIGHT));
    }
}
