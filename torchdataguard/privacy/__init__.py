"""Privacy of the model: DP-SGD (:mod:`.dp`, :mod:`.accounting`, :mod:`.sampling`, :mod:`.preflight`)."""
