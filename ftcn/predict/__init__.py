"""Video prediction: from a decoded video and its face tracks to clip, frame, track and video scores."""
