package job

import (
	"fmt"
	"slices"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// policyMatch is the outcome of a Job's podFailurePolicy for a failed pod.
type policyMatch struct {
	// failJob is the Job's failure message when a FailJob rule matched.
	failJob string
	// count says whether the failure counts toward backoffLimit (false
	// only for Ignore).
	count bool
	// action is the matching rule's action; empty when no rule matched.
	action batchv1.PodFailurePolicyAction
}

// matchPodFailurePolicy applies the first matching rule of policy to a
// failed pod. Without a match the failure counts, as upstream.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) policyMatch {
	if policy == nil {
		return policyMatch{count: true}
	}
	for i, rule := range policy.Rules {
		var what string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchOnExitCodes(&p.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			what = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
				cs.Name, p.Namespace, p.Name, cs.State.Terminated.ExitCode, rule.Action, i)
		case rule.OnPodConditions != nil:
			c := matchOnPodConditions(&p.Status, rule.OnPodConditions)
			if c == nil {
				continue
			}
			what = fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d", p.Namespace, p.Name, c.Type, rule.Action, i)
		default:
			continue
		}
		switch rule.Action {
		case batchv1.PodFailurePolicyActionIgnore:
			return policyMatch{action: rule.Action}
		case batchv1.PodFailurePolicyActionFailJob:
			return policyMatch{failJob: what, count: true, action: rule.Action}
		default: // Count, and FailIndex without backoffLimitPerIndex
			return policyMatch{count: true, action: rule.Action}
		}
	}
	return policyMatch{count: true}
}

// matchOnExitCodes returns the first terminated container (regular
// containers first, then init containers) whose non-zero exit code
// satisfies req.
func matchOnExitCodes(s *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{s.ContainerStatuses, s.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			term := cs.State.Terminated
			if term == nil || term.ExitCode == 0 {
				continue
			}
			in := slices.Contains(req.Values, term.ExitCode)
			if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) ||
				(req.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
				return cs
			}
		}
	}
	return nil
}

// matchOnPodConditions returns the first pod condition matching one of
// the patterns.
func matchOnPodConditions(s *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range s.Conditions {
		c := &s.Conditions[i]
		for _, pat := range patterns {
			if c.Type == pat.Type && c.Status == pat.Status {
				return c
			}
		}
	}
	return nil
}

// matchSuccessPolicy reports whether one of an Indexed Job's success rules
// holds for its succeeded indexes, with upstream's message.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int32, succeeded intervals) (string, bool) {
	if policy == nil || succeeded.total() == 0 {
		return "", false
	}
	for i, rule := range policy.Rules {
		if rule.SucceededIndexes != nil {
			want := parseIntervals(*rule.SucceededIndexes, int(completions))
			n := 0
			for _, iv := range want {
				for ix := iv.first; ix <= iv.last; ix++ {
					if succeeded.has(ix) {
						n++
					}
				}
			}
			if (rule.SucceededCount == nil && n == want.total()) || (rule.SucceededCount != nil && int32(n) >= *rule.SucceededCount) {
				return fmt.Sprintf("Matched rules at index %d", i), true
			}
			continue
		}
		if rule.SucceededCount != nil && int32(succeeded.total()) >= *rule.SucceededCount {
			return fmt.Sprintf("Matched rules at index %d", i), true
		}
	}
	return "", false
}

// isReady reports whether a pod's Ready condition is True.
func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// isActive reports whether a pod runs or will run: not terminal, not being
// deleted.
func isActive(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp == nil }

// isTerminating reports whether a pod is being deleted but has not reached
// a terminal phase.
func isTerminating(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp != nil }

// onlyReplaceFailed reports whether replacements wait until a pod is
// Failed (podReplacementPolicy Failed, implied by a podFailurePolicy)
// rather than merely being deleted.
func onlyReplaceFailed(j *batchv1.Job) bool {
	if j.Spec.PodFailurePolicy != nil {
		return true
	}
	return j.Spec.PodReplacementPolicy != nil && *j.Spec.PodReplacementPolicy == batchv1.Failed
}

// isFailed reports whether a pod counts as failed: Failed, or (unless
// only failed pods are replaced) deleted before it succeeded, since an
// orphaned or evicted pod may never reach a phase.
func isFailed(p *corev1.Pod, j *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailed(j) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// sortForRemoval orders pods so that the ones to delete first come first:
// unscheduled before scheduled, pending before unknown before running,
// not ready before ready, ready for less time, more restarts, newer.
func sortForRemoval(pods []*corev1.Pod) {
	phaseRank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	readySince := func(p *corev1.Pod) int64 {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return c.LastTransitionTime.Unix()
			}
		}
		return 0
	}
	restarts := func(p *corev1.Pod) int32 {
		var n int32
		for _, cs := range p.Status.ContainerStatuses {
			n = max(n, cs.RestartCount)
		}
		return n
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if ra, rb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; ra != rb {
			return ra < rb
		}
		if isReady(a) != isReady(b) {
			return !isReady(a)
		}
		if isReady(a) {
			if sa, sb := readySince(a), readySince(b); sa != sb {
				return sa > sb
			}
		}
		if ra, rb := restarts(a), restarts(b); ra != rb {
			return ra > rb
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		return a.Name < b.Name
	})
}
