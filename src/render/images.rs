//! The files behind an issue's local images: each decoded, resized to its published width and
//! encoded again. Re-encoding from pixels is what strips the metadata: EXIF (camera, GPS
//! position), XMP and comments live beside the pixels and are never copied.

use std::io::Cursor;
use std::path::PathBuf;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::content::{Issue, LocalImage, LocalImageFormat};

/// Good for photos at the size an email shows them, and about half the bytes of 95.
const JPEG_QUALITY: u8 = 85;

/// One image as the email links to it: `compose` writes it beside index.html, `send` stores it
/// for `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedImage {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read the image {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode the image {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("cannot encode the image {path} for the email")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// Every local image of the issue, ready to publish.
pub fn publish(issue: &Issue) -> Result<Vec<PublishedImage>, ImageError> {
    issue.local_images().into_iter().map(publish_one).collect()
}

/// One image at its published width (twice its display width, never enlarged), without
/// metadata.
pub fn publish_one(img: &LocalImage) -> Result<PublishedImage, ImageError> {
    let path = img.path.clone();
    let decode_err = |source| ImageError::Decode {
        path: path.clone(),
        source,
    };
    let mut decoder = ImageReader::open(&img.path)
        .map_err(|source| ImageError::Read {
            path: path.clone(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| ImageError::Read {
            path: path.clone(),
            source,
        })?
        .into_decoder()
        .map_err(decode_err)?;
    // A phone stores a portrait photo on its side with an EXIF orientation; the EXIF goes, so
    // the turn is applied to the pixels first.
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    decoded.apply_orientation(orientation);
    let resized = if decoded.width() > img.target_width {
        // `resize` keeps the aspect ratio within the box; the height bound never binds.
        decoded.resize(img.target_width, u32::MAX, FilterType::Lanczos3)
    } else {
        decoded
    };
    let bytes = encode(&resized, img.format).map_err(|source| ImageError::Encode {
        path: path.clone(),
        source,
    })?;
    Ok(PublishedImage {
        name: img.published_name.clone(),
        content_type: img.format.content_type(),
        bytes,
    })
}

fn encode(img: &DynamicImage, format: LocalImageFormat) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    match format {
        // JPEG has no alpha channel: a transparent pixel would fail to encode.
        LocalImageFormat::Jpeg => img
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))?,
        LocalImageFormat::Png => img.write_with_encoder(PngEncoder::new(&mut out))?,
        // The first frame only: an email image that moves is rarely wanted and often huge.
        LocalImageFormat::Gif => {
            GifEncoder::new(&mut out).encode_frame(image::Frame::new(img.to_rgba8()))?
        }
    }
    Ok(out.into_inner())
}
