"""Object-detection losses (SSD MultiBox, the IoU family, GHM) and their box helpers."""
