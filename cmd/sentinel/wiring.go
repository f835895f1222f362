package main

import (
	"path/filepath"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/agent"
	"github.com/sentinel-pacs/sentinel/detector"
	"github.com/sentinel-pacs/sentinel/dicomio"
	"github.com/sentinel-pacs/sentinel/store"
)

// decoder returns the file decoder with the configured limits, which
// keys each DICOM instance's patient with the workspace's patient hash
// once the workspace database is open.
func (e *env) decoder() agent.Decoder {
	return func(path string) (sentinel.Instance, sentinel.Image, error) {
		inst, img, err := dicomio.Load(path, dicomio.Options{MaxPixels: e.cfg.Ingest.MaxPixels, PatientKey: e.patientKey, NoFollow: true})
		if err == nil && inst.PatientKey == "" && e.patientKey != nil {
			if p, ok := e.filePatients[filepath.Base(path)]; ok {
				inst.PatientKey = e.patientKey("", p)
			}
		}
		return inst, img, err
	}
}

// trainConfig turns the configuration into the detector's settings.
func (e *env) trainConfig() detector.TrainConfig {
	d := e.cfg.Detector
	tc := detector.DefaultTrainConfig()
	tc.InputSize = d.InputSize
	tc.Epochs = d.Epochs
	tc.BatchSize = d.BatchSize
	tc.LearningRate = d.LearningRate
	tc.Seed = d.Seed
	tc.HoldoutFraction = d.HoldoutFraction
	tc.TargetFPR = d.TargetFPR
	tc.UncertainMargin = d.UncertainMargin
	tc.NormalQuantile = d.NormalQuantile
	tc.UncertainQuantile = d.UncertainQuantile
	tc.SWAGEpochs = d.SWAGEpochs
	tc.SWAGSamples = d.SWAGSamples
	tc.CoresetFraction = d.CoresetFraction
	tc.Neighbours = d.Neighbours
	tc.MemoryWeight = d.MemoryWeight
	tc.Standardise = d.Standardise
	tc.PixelPatch = d.PixelPatch
	tc.PixelStride = d.PixelStride
	tc.PixelLocal = d.PixelLocal
	tc.PixelWeight = d.PixelWeight
	tc.NearestWeight = d.NearestWeight
	tc.NearestShift = d.NearestShift
	tc.SampledMemory = d.SampledMemory
	tc.TextureWeight = d.TextureWeight
	tc.Logger = e.log
	return tc
}

// newAgent wires the agent from the configuration; on, when not nil, is
// called with each file's outcome.
func (e *env) newAgent(db *store.DB, m agent.Scorer, copyToQuarantine bool, on func(agent.Outcome)) *agent.Agent {
	return agent.New(e.agentConfig(copyToQuarantine, on), db, m, e.decoder(), dicomio.Resample)
}

// agentConfig is the agent's configuration; on, when not nil, is called
// with each file's outcome.
func (e *env) agentConfig(copyToQuarantine bool, on func(agent.Outcome)) agent.Config {
	in := e.cfg.Ingest
	sc := e.cfg.Scope
	return agent.Config{
		Workspace: e.cfg.Workspace,
		Version:   version,
		Inbox:     e.paths.Inbox,
		Scope: agent.Scope{
			Enabled: sc.Enabled, Modalities: sc.Modalities, SOPClasses: sc.SOPClasses,
			Photometrics: sc.Photometrics, BodyParts: sc.BodyParts, ViewPositions: sc.ViewPositions,
			MinSize: sc.MinSize, ResearchImages: sc.ResearchImages,
		},
		Decisions: agent.DecisionPolicy{
			NormalSensitivity: e.cfg.Decisions.NormalSensitivity, MinPerClass: e.cfg.Decisions.MinPerClass,
		},
		OmitSourceFile:   e.cfg.Reports.SourceFile == "none",
		Reports:          e.paths.Reports,
		Quarantine:       e.paths.Quarantine,
		Archive:          e.paths.Archive,
		StableFor:        in.StableFor.Duration,
		PollInterval:     in.PollInterval.Duration,
		RescanInterval:   in.RescanInterval.Duration,
		Workers:          in.Workers,
		QueueSize:        in.QueueSize,
		StudyQuiet:       in.StudyQuiet.Duration,
		ReviseWithin:     in.ReviseWithin.Duration,
		MinFreeBytes:     in.MinFreeMB << 20,
		StateDir:         filepath.Dir(e.paths.Database),
		WriteGrace:       in.WriteGrace.Duration,
		FollowLinks:      in.FollowLinks,
		MaxAttempts:      in.MaxAttempts,
		RetryDelay:       in.RetryDelay.Duration,
		MaxRetryDelay:    in.MaxRetryDelay.Duration,
		HTTPAddr:         e.cfg.HTTP.Addr,
		TLSCert:          e.cfg.HTTP.TLSCert,
		TLSKey:           e.cfg.HTTP.TLSKey,
		MaxConns:         e.cfg.HTTP.MaxConns,
		Token:            e.cfg.HTTP.Token,
		ReadToken:        e.cfg.HTTP.ReadToken,
		CopyToQuarantine: copyToQuarantine,
		Logger:           e.log,
		OnOutcome:        on,
	}
}
