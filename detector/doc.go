// Package detector owns Sentinel's anomaly model: the network graph, its
// training on normal images only, the SWAG posterior over its weights, the
// patch memory bank, the calibration of the decision threshold, scoring and
// heatmaps, and the model file.
//
// The model is a small convolutional autoencoder built with gorgonia. Train
// holds some of the normals out and fits the network to the rest by
// minimising the mean squared reconstruction error; its last epochs run at
// a constant learning rate and collect the weights into a SWAG posterior
// (Maddox et al. 2019: running first and second moments and the last K
// deviations). The memory bank is a PatchCore-style (Roth et al. 2022)
// greedy k-center coreset of the training images' patch features from two
// encoder stages of the SWAG-mean network.
//
// Score averages the reconstruction score over SWAG weight samples, scores
// the patches against the memory bank, standardises both against the
// held-out normals and fuses them; the spread over the samples is the
// uncertainty, and the threshold is the score the held-out normals exceed at
// the configured false-positive rate. BaselineScore gives the no-learning
// yardstick (distance to the nearest standardised training normal). Save
// and Load keep everything in one versioned, checksummed file.
//
// The package takes images already decoded and resampled to the model's
// input size and returns plain sentinel types: no gorgonia value leaves it.
// It does no SQL, watches no files and decodes no DICOM; those belong to
// store, agent and dicomio. Training and scoring are deterministic: the same
// images, configuration and seed give bit-identical weights, samples, bank
// and scores.
package detector
