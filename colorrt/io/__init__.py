"""Reading and writing media: images now; video, GPU decode and page archives plug in beside it."""

from colorrt.io.images import IMAGE_SUFFIXES, list_images, read_image, write_image

__all__ = ["IMAGE_SUFFIXES", "list_images", "read_image", "write_image"]
