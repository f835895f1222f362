// Package detector owns Sentinel's anomaly model: the network graph, its
// training on normal images only, the calibration of its decision threshold,
// scoring and heatmaps, and the model file.
//
// The model is a small convolutional autoencoder built with gorgonia. Train
// fits it to normal images by minimising the mean squared reconstruction
// error and holds some of the normals out to calibrate on: an image's score
// is its reconstruction error, and the threshold is the score the held-out
// normals exceed at the configured false-positive rate. Score turns an image
// into a sentinel.Score with a per-pixel heatmap. Save and Load keep a model
// in one versioned, checksummed file.
//
// The package takes images already decoded and resampled to the model's
// input size and returns plain sentinel types: no gorgonia value leaves it.
// It does no SQL, watches no files and decodes no DICOM; those belong to
// store, agent and dicomio. Training and scoring are deterministic: the same
// images, configuration and seed give bit-identical weights.
//
// A model keeps its weights as named flat float32 tensors and its score as
// named components, so that weight averaging (SWAG) and a patch memory bank
// can be added beside the reconstruction error without changing the file
// layout's framing.
package detector
