"""Image restoration and reconstruction: SSIM, MS-SSIM, total variation and PSNR losses."""
