//! Uploaded images: checked, decoded within limits, re-encoded, stored under `MEDIA_DIR`.
//!
//! Nothing a person uploads is served as it came: the original is decoded and written
//! anew as a bounded JPEG and a thumbnail. That strips metadata (GPS positions in phone
//! photos), defuses files that are also something else (polyglots), and caps what a
//! catalog page makes a phone download.

use std::{
    io::Cursor,
    path::{Path, PathBuf},
};

use ::http::StatusCode;
use axum::extract::{multipart::MultipartError, Multipart};
use image::{
    codecs::jpeg::JpegEncoder, imageops::FilterType, DynamicImage, ImageDecoder, ImageFormat,
    ImageReader, Limits, RgbImage,
};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Largest upload accepted, in bytes: a phone photo is 2 to 8 MiB.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The body limit of an upload route (the API's and the donor page's): a little more than
/// the file, for multipart headers and the alt text.
pub const UPLOAD_BODY_LIMIT: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Largest image accepted, in pixels (40 megapixels: above any phone camera). Decoding
/// costs memory in pixels, not bytes, so a tiny file could otherwise claim gigabytes.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Longest side of the stored image and of the thumbnail.
pub const FULL_SIZE: u32 = 1600;
pub const THUMB_SIZE: u32 = 400;
/// JPEG quality: visually clean for photos at a third of the size of quality 95.
const JPEG_QUALITY: u8 = 82;
/// Subfolder of `MEDIA_DIR` for item images, served at `/media/items/`.
const ITEMS_DIR: &str = "items";

/// At most two images are decoded at once: each may hold up to ~320 MB while decoding
/// (40 MP of 16-bit RGBA), so this bounds the memory an upload burst can take, and keeps
/// a core free for bids.
static DECODING: Semaphore = Semaphore::const_new(2);

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefusal {
    #[error("Only JPEG, PNG and WebP images are accepted.")]
    Unsupported,
    #[error("The image has too many pixels; please upload one of at most 40 megapixels.")]
    TooManyPixels,
    #[error("The image could not be read; the file may be damaged.")]
    Corrupt,
}

/// A re-encoded image, ready to store.
#[derive(Debug)]
pub struct Processed {
    pub full: Vec<u8>,
    pub thumb: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Detects the format from the content (never the name or the declared type), decodes
/// with limits, applies the camera's orientation, and re-encodes as JPEG at two sizes.
/// CPU-bound: call it through [`process_upload`] from async code.
pub fn process(bytes: &[u8], max_pixels: u64) -> Result<Processed, ImageRefusal> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| ImageRefusal::Corrupt)?;
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => {}
        _ => return Err(ImageRefusal::Unsupported),
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    // Either side alone may not exceed the pixel budget over a 1-pixel other side; the real
    // check on the product follows once the header is read.
    limits.max_image_width = Some(u32::try_from(max_pixels).unwrap_or(u32::MAX));
    limits.max_image_height = Some(u32::try_from(max_pixels).unwrap_or(u32::MAX));
    limits.max_alloc = Some(max_pixels * 8 + 16 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(refusal)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(ImageRefusal::TooManyPixels);
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let full = fit(&img, FULL_SIZE);
    let thumb = fit(&full, THUMB_SIZE);
    let full_rgb = flatten(&full);
    Ok(Processed {
        width: full_rgb.width(),
        height: full_rgb.height(),
        full: encode(&full_rgb)?,
        thumb: encode(&flatten(&thumb))?,
    })
}

fn refusal(e: image::ImageError) -> ImageRefusal {
    match e {
        image::ImageError::Limits(_) => ImageRefusal::TooManyPixels,
        image::ImageError::Unsupported(_) => ImageRefusal::Unsupported,
        _ => ImageRefusal::Corrupt,
    }
}

/// Scales down to fit `size` on the longest side; never scales up.
fn fit(img: &DynamicImage, size: u32) -> DynamicImage {
    if img.width() <= size && img.height() <= size {
        img.clone()
    } else {
        // CatmullRom: nearly Lanczos' sharpness at about half the cost.
        img.resize(size, size, FilterType::CatmullRom)
    }
}

/// JPEG has no transparency: transparent areas become white (as on the page), not black.
fn flatten(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    })
}

fn encode(img: &RgbImage) -> Result<Vec<u8>, ImageRefusal> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|_| ImageRefusal::Corrupt)?;
    Ok(out)
}

/// [`process`] on a blocking thread, at most two at a time (see [`DECODING`]).
pub async fn process_upload(bytes: Vec<u8>) -> anyhow::Result<Result<Processed, ImageRefusal>> {
    let _permit = DECODING.acquire().await?;
    Ok(tokio::task::spawn_blocking(move || process(&bytes, MAX_PIXELS)).await?)
}

/// Writes the image and its thumbnail under `MEDIA_DIR/items/` with random names (so a
/// name says nothing and cannot be guessed); returns their paths relative to `MEDIA_DIR`.
pub async fn store(media_dir: &Path, image: &Processed) -> std::io::Result<(String, String)> {
    let dir = media_dir.join(ITEMS_DIR);
    tokio::fs::create_dir_all(&dir).await?;
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    let stem = hex::encode(raw);
    let full = format!("{ITEMS_DIR}/{stem}.jpg");
    let thumb = format!("{ITEMS_DIR}/{stem}-thumb.jpg");
    tokio::fs::write(media_dir.join(&full), &image.full).await?;
    if let Err(e) = tokio::fs::write(media_dir.join(&thumb), &image.thumb).await {
        remove(media_dir, &[&full]).await;
        return Err(e);
    }
    Ok((full, thumb))
}

/// Removes stored files; a file already gone is fine, other failures are logged (an
/// orphaned file wastes space but harms nobody).
pub async fn remove(media_dir: &Path, names: &[&str]) {
    for name in names {
        let path: PathBuf = media_dir.join(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "could not remove media file")
            }
        }
    }
}

/// The public URL of a stored file.
pub fn url(name: &str) -> String {
    format!("/media/{name}")
}

// Reading an upload from a form. Both edges take images as multipart (`file` and `alt`);
// this reads the two fields within the size limit, and nothing else is kept.

fn too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The image is too large; please upload one of at most 10 MB.",
    )
}

/// An uploaded image as a form sent it: the file and its alt text, each absent when the
/// form left it out (the service says which is missing).
pub struct Upload {
    pub file: Option<Vec<u8>>,
    pub alt: Option<String>,
}

/// Reads `file` and `alt` from a multipart body (the API's and the donor page's form).
pub async fn read_upload(mut multipart: Multipart) -> AppResult<Upload> {
    let mut upload = Upload {
        file: None,
        alt: None,
    };
    let broken = |e: MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            AppError::bad_request("malformed_multipart", "The upload could not be read.")
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(broken)? {
        match field.name() {
            Some("file") => {
                let bytes = field.bytes().await.map_err(broken)?;
                if bytes.len() > MAX_UPLOAD_BYTES {
                    return Err(too_large());
                }
                upload.file = Some(bytes.to_vec());
            }
            Some("alt") => upload.alt = Some(field.text().await.map_err(broken)?),
            // Other fields (a form's csrf_token, say) are not ours to refuse.
            _ => {}
        }
    }
    Ok(upload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgba};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_pixel(w, h, Rgba([10u8, 200, 30, 128]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn large_images_are_bounded_and_reencoded_as_jpeg() {
        let out = process(&png(2000, 1000), MAX_PIXELS).unwrap();
        assert_eq!((out.width, out.height), (1600, 800));
        assert_eq!(&out.full[..3], &[0xFF, 0xD8, 0xFF]);
        let thumb = image::load_from_memory(&out.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 200));
        // Half-transparent green over white, not over black.
        let px = image::load_from_memory(&out.full).unwrap().to_rgb8();
        assert!(px.get_pixel(5, 5).0[0] > 100, "{:?}", px.get_pixel(5, 5));
    }

    #[test]
    fn small_images_are_not_scaled_up() {
        let out = process(&png(300, 200), MAX_PIXELS).unwrap();
        assert_eq!((out.width, out.height), (300, 200));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            process(&png(101, 100), 10_000).unwrap_err(),
            ImageRefusal::TooManyPixels
        );
        assert_eq!(
            process(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", MAX_PIXELS).unwrap_err(),
            ImageRefusal::Unsupported
        );
        assert_eq!(
            process(b"just text, named photo.jpg", MAX_PIXELS).unwrap_err(),
            ImageRefusal::Unsupported
        );
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        assert_eq!(
            process(&truncated, MAX_PIXELS).unwrap_err(),
            ImageRefusal::Corrupt
        );
    }
}
