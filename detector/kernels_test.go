package detector

import (
	"slices"
	"testing"
)

func TestChooseKernels(t *testing.T) {
	impls := sgemmImpls()
	if impls[len(impls)-1] != sgemmGeneric {
		t.Fatal("the generic family is not last")
	}
	if got := chooseKernels(impls, ""); got != impls[0] {
		t.Errorf("no choice gave %s, want the fastest %s", got.name, impls[0].name)
	}
	if got := chooseKernels(impls, "GENERIC"); got != sgemmGeneric {
		t.Errorf("generic gave %s", got.name)
	}
	if got := chooseKernels(impls, "no-such-family"); got != impls[0] {
		t.Errorf("an unknown name gave %s", got.name)
	}
	for _, name := range KernelFamilies() {
		if got := chooseKernels(impls, name); got.name != name {
			t.Errorf("%s gave %s", name, got.name)
		}
	}
	if !slices.Contains(KernelFamilies(), KernelFamily()) {
		t.Errorf("the family in use %s is not one the CPU runs %v", KernelFamily(), KernelFamilies())
	}
}
