"""Faces: detection backends, tracking, crop boxes, clip windows and alignment (pure functions over numpy data)."""
